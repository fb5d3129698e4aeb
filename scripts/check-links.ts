/**
 * `npm run check:links`: every relative link in the repository's Markdown (README.md, docs/)
 * must resolve to a file or folder of the repository, and every `#anchor` to a heading of the
 * target document (GitHub's slugs), so that documentation cannot point at something that moved,
 * or at anything outside the repository. Offline: absolute URLs are not fetched. Exits 1 with one
 * line per broken link.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { posix } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A link that does not resolve, where it is and why. */
export type Problem = { file: string; line: number; target: string; reason: string }

/** A link found in a Markdown text: its destination and the line it starts on. */
export type Link = { target: string; line: number }

/** The text with fenced code blocks and code spans blanked out, lines and offsets kept. */
function withoutCode(text: string): string {
  const lines = text.split('\n')
  let fence: string | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1]
    if (fence === undefined && marker) {
      fence = marker
      lines[i] = ''
    } else if (fence !== undefined) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined
      lines[i] = ''
    }
  }
  return lines
    .join('\n')
    .replace(/(`+)(?!`)[\s\S]*?(?<!`)\1(?!`)/g, (span) => span.replace(/[^\n]/g, ' '))
}

const lineAt = (text: string, offset: number) => text.slice(0, offset).split('\n').length

/** Inline links and images, reference definitions and HTML `href`/`src`, outside code. */
export function extractLinks(markdown: string): Link[] {
  const text = withoutCode(markdown)
  const links: Link[] = []
  const inline =
    /!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g
  for (const m of text.matchAll(inline)) {
    links.push({ target: (m[1] as string).replace(/^<|>$/g, ''), line: lineAt(text, m.index) })
  }
  for (const m of text.matchAll(/^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)/gm)) {
    links.push({ target: (m[1] as string).replace(/^<|>$/g, ''), line: lineAt(text, m.index) })
  }
  for (const m of text.matchAll(/<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*"([^"]*)"/gi)) {
    links.push({ target: m[1] as string, line: lineAt(text, m.index) })
  }
  return links
}

/**
 * The anchors GitHub gives a document's headings: the heading's text lower-cased, everything
 * but letters, digits, `-`, `_` and spaces dropped, each space a `-`; repeats get `-1`, `-2`…
 * Explicit `<a id|name="…">` anchors count too.
 */
export function anchors(markdown: string): Set<string> {
  const found = new Set<string>()
  const seen = new Map<string, number>()
  let fence: string | undefined
  for (const line of markdown.split('\n')) {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1]
    if (fence === undefined && marker) fence = marker
    else if (fence !== undefined) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined
    } else {
      const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)?.[1]
      if (heading !== undefined) {
        const base = slug(heading)
        const n = seen.get(base) ?? 0
        seen.set(base, n + 1)
        found.add(n === 0 ? base : `${base}-${n}`)
      }
    }
    for (const m of line.matchAll(/<a\b[^>]*?\b(?:id|name)\s*=\s*"([^"]+)"/gi))
      found.add(m[1] as string)
  }
  return found
}

/** GitHub's slug of a heading's source text (its rendered text: links, code and emphasis unwrapped). */
export function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/[`*]/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-')
}

/**
 * Checks the links of `files` (paths relative to the repository root, POSIX separators) against
 * the repository's files. `read` gives a Markdown file's text; `paths` are every file of the
 * repository. Pure, for the self-test.
 */
export function checkLinks(
  files: readonly string[],
  paths: readonly string[],
  read: (path: string) => string,
): { problems: Problem[]; links: number } {
  const fileSet = new Set(paths)
  const dirSet = new Set<string>()
  for (const p of paths) {
    for (let d = posix.dirname(p); d !== '.'; d = posix.dirname(d)) dirSet.add(d)
  }
  const anchorCache = new Map<string, Set<string>>()
  const anchorsOf = (path: string) => {
    let set = anchorCache.get(path)
    if (!set) {
      set = anchors(read(path))
      anchorCache.set(path, set)
    }
    return set
  }
  const problems: Problem[] = []
  let count = 0
  for (const file of files) {
    for (const { target, line } of extractLinks(read(file))) {
      // Absolute URLs (https:, mailto:…) and protocol-relative ones are not this check's business.
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue
      count++
      const problem = (reason: string) => problems.push({ file, line, target, reason })
      const hashAt = target.indexOf('#')
      const rawPath = (hashAt === -1 ? target : target.slice(0, hashAt)).replace(/\?.*$/, '')
      const fragment = hashAt === -1 ? undefined : target.slice(hashAt + 1)
      let path: string
      try {
        path = decodeURIComponent(rawPath)
      } catch {
        problem('not a valid URL path')
        continue
      }
      const resolved =
        path === ''
          ? file
          : posix.normalize(
              path.startsWith('/') ? path.slice(1) : posix.join(posix.dirname(file), path),
            )
      if (resolved === '..' || resolved.startsWith('../')) {
        problem('points outside the repository')
        continue
      }
      const asDir = resolved.replace(/\/$/, '')
      if (!fileSet.has(resolved) && !dirSet.has(asDir) && asDir !== '.') {
        problem(`no such file in the repository: ${resolved}`)
        continue
      }
      if (fragment !== undefined && fragment !== '') {
        if (!resolved.endsWith('.md') || !fileSet.has(resolved)) continue
        if (!anchorsOf(resolved).has(decodeURIComponent(fragment))) {
          problem(`no heading #${fragment} in ${resolved}`)
        }
      }
    }
  }
  return { problems, links: count }
}

/** The repository's files: tracked, plus new ones not ignored (so a link to a file being added counts). */
function repositoryFiles(root: string): string[] {
  const git = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: root,
    encoding: 'utf8',
  })
  if (git.status !== 0) throw new Error(`git ls-files failed: ${git.stderr}`)
  return git.stdout.split('\0').filter((p) => p !== '')
}

/** The Markdown files checked: README.md and everything under docs/. */
export const isChecked = (path: string) =>
  path === 'README.md' || (path.startsWith('docs/') && path.endsWith('.md'))

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2] ?? process.cwd()
  const paths = repositoryFiles(root)
  const files = paths.filter(isChecked).sort()
  const { problems, links } = checkLinks(files, paths, (p) =>
    readFileSync(posix.join(root, p), 'utf8'),
  )
  if (problems.length > 0) {
    for (const p of problems) console.error(`${p.file}:${p.line}: ${p.target}: ${p.reason}`)
    console.error(`check-links: ${problems.length} broken of ${links} relative links`)
    process.exit(1)
  }
  console.log(
    `check-links: ${links} relative links in ${files.length} files resolve (${files.join(', ')})`,
  )
}
