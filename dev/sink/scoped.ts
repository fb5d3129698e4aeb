/**
 * What the sink's faults and throttles share: one global entry plus one per topic. A produce
 * request writing to a topic that has an entry of its own is governed by that entry alone, so
 * parallel tests, each on its own topic, do not disturb one another.
 */
export class TopicScoped<E> {
  #global: E | null = null
  readonly #byTopic = new Map<string, E>()

  /** Installs an entry for a topic, or the global one (replacing the one of the same scope). */
  set(topic: string | undefined, entry: E): void {
    if (topic === undefined) this.#global = entry
    else this.#byTopic.set(topic, entry)
  }

  /** Removes one topic's entry, or every entry. */
  clear(topic?: string): void {
    if (topic === undefined) {
      this.#global = null
      this.#byTopic.clear()
    } else {
      this.#byTopic.delete(topic)
    }
  }

  /** Removes the entry of exactly this scope (`undefined`: the global one). */
  remove(topic: string | undefined): void {
    if (topic === undefined) this.#global = null
    else this.#byTopic.delete(topic)
  }

  /** Every entry, the global one first. */
  list(): E[] {
    const all = [...this.#byTopic.values()]
    return this.#global ? [this.#global, ...all] : all
  }

  /** The entry governing a request writing to `topics`, with its scope; null when none. */
  find(topics: readonly string[]): { entry: E; topic: string | undefined } | null {
    for (const topic of topics) {
      const entry = this.#byTopic.get(topic)
      if (entry) return { entry, topic }
    }
    return this.#global ? { entry: this.#global, topic: undefined } : null
  }
}
