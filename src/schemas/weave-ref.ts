/**
 * What Weave and W&B accept as project names and ref paths, checked at the edge so that nothing
 * the pipeline would refuse (or could misread as another project's) reaches Kafka or a grant.
 * Sources (docs/compatibility.md#project-names-and-ref-paths): the W&B SDK's project-name check
 * (`wandb/sdk/wandb_settings.py`, `validate_project`) and Weave's ref parser
 * (`weave/trace_server/refs_internal.py`, `parse_internal_uri` and `validate_extra`).
 */

/** The W&B SDK's limit on a project name's length. */
export const MAX_NAME_LENGTH = 128

// The characters the W&B SDK refuses in a project name (`/\#?%:`), control characters (its
// newer check refuses a newline) and `*`, which no directory entry or grant may hold: it is the
// grant syntax's wildcard (`entity/*`).
const FORBIDDEN = /[/\\#?%:*]/
const isControl = (name: string) => {
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i)
    if (unit < 0x20 || unit === 0x7f) return true
  }
  return false
}

/**
 * Why an entity or project name cannot be a W&B one, or undefined when it can. Besides the SDK's
 * rules: `.` and `..` (URL dot segments: no W&B address can name them, and a path built from them
 * names another place) and leading or trailing white space (invisible, so a lookalike of another
 * project's name).
 */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'is empty'
  // Python counts code points; a JavaScript length counts UTF-16 units, so count again above it.
  if (name.length > MAX_NAME_LENGTH && [...name].length > MAX_NAME_LENGTH) {
    return `is longer than ${MAX_NAME_LENGTH} characters`
  }
  if (FORBIDDEN.test(name) || isControl(name))
    return 'holds one of / \\ # ? % : * or a control character'
  if (name === '.' || name === '..') return 'is . or ..'
  if (name.trim() !== name) return 'starts or ends with white space'
  return undefined
}

/** Why `entity/project` cannot name a W&B project, or undefined when it can. */
export function projectProblem(project: string): string | undefined {
  const slash = project.indexOf('/')
  if (slash === -1) return 'must be <entity>/<project>'
  const entityProblem = nameProblem(project.slice(0, slash))
  if (entityProblem !== undefined) return `entity ${entityProblem}`
  const rest = project.slice(slash + 1)
  if (rest.includes('/')) return 'must be <entity>/<project>'
  const projectProblem = nameProblem(rest)
  return projectProblem === undefined ? undefined : `project ${projectProblem}`
}

// Weave's edge names (refs_internal.py: DICT_KEY_EDGE_NAME, LIST_INDEX_EDGE_NAME,
// OBJECT_ATTR_EDGE_NAME, TABLE_ROW_ID_EDGE_NAME).
const EDGES = new Set(['key', 'index', 'attr', 'id'])
// What Python's int() takes from the ASCII digits Weave writes for an index (`str(index)`).
const INDEX = /^\s*[+-]?\d+(?:_\d+)*\s*$/

/**
 * Why the path segments after `<name>:<digest>` of an object or op ref are not what Weave's
 * `validate_extra` accepts, or undefined: pairs of an edge name (`key`, `index`, `attr`, `id`) and
 * a value, an `index` value an integer. So `..` or `object` there is refused, never produced.
 */
export function extraProblem(segments: readonly string[]): string | undefined {
  if (segments.length % 2 !== 0) return 'must come in pairs <edge>/<value>'
  for (let i = 0; i < segments.length; i += 2) {
    const edge = unquotePlus(segments[i] as string)
    if (!EDGES.has(edge)) return 'must be pairs whose edge is key, index, attr or id'
    if (edge === 'index' && !INDEX.test(unquotePlus(segments[i + 1] as string))) {
      return 'must give index an integer value'
    }
  }
  return undefined
}

/** Python's `urllib.parse.unquote_plus`, which Weave applies to each segment before checking it. */
function unquotePlus(segment: string): string {
  const spaced = segment.replaceAll('+', ' ')
  if (!spaced.includes('%')) return spaced
  try {
    return decodeURIComponent(spaced)
  } catch {
    // Python keeps a malformed escape as it is; so does a segment that is checked as sent.
    return spaced
  }
}

/** `weave:///<entity>/<project>/<tail>`'s project and tail as Weave's converter splits them. */
export const EXTERNAL_PREFIX = 'weave:///'
export const INTERNAL_PREFIX = 'weave-trace-internal:///'

/**
 * `weave:///<entity>/<project>/<tail>` split as Weave's `universal_ext_to_int_ref_converter`
 * splits it (`rest.split("/", 2)`): the project is `entity/project` (either part may be empty),
 * the tail everything after the second slash, unchanged. Undefined where Weave raises
 * "Invalid URI" (fewer than two slashes after the scheme).
 */
export function splitExternalRef(ref: string): { project: string; tail: string } | undefined {
  const first = ref.indexOf('/', EXTERNAL_PREFIX.length)
  const second = first === -1 ? -1 : ref.indexOf('/', first + 1)
  if (second === -1) return undefined
  return { project: ref.slice(EXTERNAL_PREFIX.length, second), tail: ref.slice(second + 1) }
}

/**
 * The projects of the call ids that are `weave:///` refs: Weave's converter rewrites every string
 * of the request starting with `weave:///`, call ids included, so their projects are looked up
 * (and access-checked) like the request's own. Ids whose shape the edge refuses are checked first
 * (edgeErrors), so every such id splits here.
 */
export function callIdRefProjects(callIds: readonly string[]): string[] {
  const projects: string[] = []
  for (const id of callIds) {
    // One cheap test per id; the scheme check only for the rare id that passes it.
    if (!id.includes(':///') || !id.startsWith(EXTERNAL_PREFIX)) continue
    const parts = splitExternalRef(id)
    if (parts !== undefined) projects.push(parts.project)
  }
  return projects
}
