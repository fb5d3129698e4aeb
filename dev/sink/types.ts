/**
 * Public types of the local Kafka REST sink. Kept apart from the server so that tests, scripts
 * and benchmarks can import them without pulling in `node:http`.
 */

/** The producer dialects the sink speaks. */
export type Dialect = 'upstash' | 'confluent-v3' | 'kafka-rest-v2'

/**
 * Which implementation of Kafka REST v2 (`POST /topics/:topic`) to imitate; they share the
 * request shape but answer differently (see dialects/kafka-rest-v2.ts).
 */
export type V2Flavor = 'confluent' | 'redpanda' | 'karapace'

/** A header as stored: the name, and the value bytes as UTF-8 text and as base64. */
export type StoredHeader = {
  key: string
  /** UTF-8 reading of the value bytes; null for a null header value (v3 allows one). */
  value: string | null
  valueBase64: string | null
}

/** One record as the sink stored it: exact key/value/header bytes, plus where it landed. */
export type StoredMessage = {
  topic: string
  partition: number
  offset: number
  /** Record timestamp, ms since the epoch (the producer's if it sent one, else arrival time). */
  timestamp: number
  /** UTF-8 reading of the key bytes; null for a null key. */
  key: string | null
  keyBase64: string | null
  /**
   * UTF-8 reading of the value bytes. Null only for a null value (a tombstone), which Confluent
   * v2/v3 and Redpanda can produce; Upstash and Karapace never do.
   */
  value: string | null
  valueBase64: string | null
  headers: StoredHeader[]
  /** Dialect of the produce request that wrote it. */
  dialect: Dialect
}

/** Fields every fault may carry. */
export type FaultScope = {
  /** Apply to the next N matching produce requests, then remove the fault. */
  times?: number
  /** Apply to this random share (0..1) of matching produce requests. */
  probability?: number
  /**
   * Only produce requests that write to this topic match; faults for different topics coexist,
   * so parallel tests each using their own topic do not disturb one another.
   */
  topic?: string
  /**
   * Kafka REST v2 flavor to imitate while this fault applies (overrides the sink's setting and
   * the request's `/flavor/<name>` path prefix).
   */
  v2Flavor?: V2Flavor
}

/** Answer with this HTTP status; the body defaults to the dialect's own error shape. */
export type StatusFault = FaultScope & {
  kind: 'status'
  status: number
  body?: string
  contentType?: string
  /** Value for a `Retry-After` header. */
  retryAfter?: string
}

/**
 * Hold the request without answering. Without `ms`, until the sink is reset or closed; with
 * `ms`, the connection is then dropped unanswered (as a proxy timing out would).
 */
export type HangFault = FaultScope & { kind: 'hang'; ms?: number }

/** Answer with an HTML error page, as a reverse proxy or load balancer does (default 502). */
export type HtmlFault = FaultScope & { kind: 'html'; status?: number }

/**
 * Store some records and report the others failed in the dialect's per-record way. Indexes
 * are positions in the request; default: the last record.
 */
export type PartialFault = FaultScope & { kind: 'partial'; failIndexes?: number[] }

/** Answer normally, after `ms` milliseconds. */
export type DelayFault = FaultScope & { kind: 'delay'; ms: number }

/** A fault applied to produce requests (of any dialect). */
export type Fault = StatusFault | HangFault | HtmlFault | PartialFault | DelayFault

/** Names of the fault kinds. */
export type FaultKind = Fault['kind']

/**
 * The sink as a throttled endpoint. Produce requests beyond `ratePerSecond` (a token bucket of
 * `burst` tokens) are answered 429 with `Retry-After`; bodies over `maxRequestBytes`, 413. Both
 * answers are in the dialect's error shape. With a `topic`, only requests writing to it count.
 */
export type Throttle = {
  /** Produce requests admitted per second (the bucket's refill rate). */
  ratePerSecond?: number
  /** Requests admitted at once after a quiet spell (default: one second's worth, at least 1). */
  burst?: number
  /** `Retry-After` of a 429, seconds (default: until the next token, rounded up, at least 1). */
  retryAfter?: number
  /** Largest produce request body accepted, bytes. */
  maxRequestBytes?: number
  /** Only produce requests writing to this topic are counted and limited. */
  topic?: string
}

/** Counters, for the whole sink or for one topic. */
export type SinkStats = {
  /** Produce requests received (every attempt counts, including those refused or faulted). */
  produceRequests: number
  /** The same, per dialect. */
  byDialect: Record<Dialect, number>
  /** Produce requests answered with every record stored and no fault applied. */
  accepted: number
  /** Produce requests refused or partly failed by the dialect itself (auth, validation, ...). */
  rejected: number
  /** Produce requests a failing fault (status, hang, html, partial) was applied to. */
  failedByFault: number
  /** Produce requests refused with 429 by a throttle's request rate. */
  throttled: number
  /** Produce requests refused with 413 for their size (also counted in `rejected`). */
  tooLarge: number
  /** Faults applied, per kind (delay included). */
  faults: Record<FaultKind, number>
  /** Records stored. */
  recordsStored: number
}

/** Options of {@link startSink}. */
export type SinkOptions = {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number
  /** Loopback address to bind: '127.0.0.1' (default), '::1' or 'localhost'. Nothing else. */
  host?: string
  /** HTTP Basic credentials every dialect checks (default 'dev' / 'dev-password'). */
  username?: string
  password?: string
  /** Partitions per topic (default 3). */
  partitions?: number
  /** Cluster id accepted in Confluent v3 paths (default 'local-cluster'). */
  clusterId?: string
  /** Create topics on first use (default true). When false only `topics` exist. */
  autoCreateTopics?: boolean
  /** Topics that exist from the start. */
  topics?: string[]
  /**
   * Kafka REST v2 flavor to imitate (default 'confluent') for requests that do not choose one
   * with a `/flavor/<name>` path prefix (see sink.ts).
   */
  v2Flavor?: V2Flavor
  /** Largest request body accepted, in bytes (default 8 MiB, Confluent Cloud's message limit). */
  maxBodyBytes?: number
  /** Log one line per request to stderr. */
  log?: boolean
  /** A global throttle from the start (restored by reset). */
  throttle?: Throttle
}

/** A running sink. */
export type RunningSink = {
  /** Base URL, e.g. `http://127.0.0.1:40123` (no trailing slash). */
  url: string
  port: number
  /** Stops listening and drops every open connection (hung requests included). */
  close(): Promise<void>
  /** Stored messages in arrival order, optionally of one topic. */
  messages(topic?: string): StoredMessage[]
  /** Clears messages, consumer groups, faults and stats; drops hung requests. */
  reset(): void
  /**
   * Installs a fault. With a `topic` it replaces only that topic's fault; without, the global one.
   * `null` removes every fault.
   */
  setFault(fault: Fault | null): void
  /** Counters for the whole sink, or for one topic. */
  stats(topic?: string): SinkStats
  /** Switches the Kafka REST v2 flavor. */
  setV2Flavor(flavor: V2Flavor): void
  /**
   * Installs a throttle. With a `topic` it replaces only that topic's; without, the global one.
   * `null` removes every throttle.
   */
  setThrottle(throttle: Throttle | null): void
}
