/**
 * `npm run test:links`: the link checker finds what it must (relative links outside code, GitHub's
 * heading anchors) and fails, naming each one, on a missing file, a missing heading and a link
 * out of the repository; the CLI for real on a scratch repository. Run with `node --test`.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { anchors, checkLinks, extractLinks, slug } from './check-links.ts'

const CLI = fileURLToPath(new URL('./check-links.ts', import.meta.url))

describe('extractLinks', () => {
  it('finds inline links, images, reference definitions and HTML links, with their lines', () => {
    const md = [
      'See [the docs](docs/a.md) and ![a picture](img/p.png "title").',
      '[wrapped',
      'text](docs/b.md#part) and [`code` in text](<docs/c d.md>)',
      '[ref]: docs/ref.md',
      '<a href="docs/html.md">html</a>',
    ].join('\n')
    assert.deepEqual(extractLinks(md), [
      { target: 'docs/a.md', line: 1 },
      { target: 'img/p.png', line: 1 },
      { target: 'docs/b.md#part', line: 2 },
      { target: 'docs/c d.md', line: 3 },
      { target: 'docs/ref.md', line: 4 },
      { target: 'docs/html.md', line: 5 },
    ])
  })

  it('ignores links inside fenced code blocks and code spans', () => {
    const md = [
      '```sh',
      'echo [not](a-link.md)',
      '```',
      '~~~',
      '[nor](this.md)',
      '~~~',
      'Text `[in a span](span.md)` and ``[double](double.md)``, then [real](real.md).',
    ].join('\n')
    assert.deepEqual(extractLinks(md), [{ target: 'real.md', line: 7 }])
  })
})

describe('anchors follow GitHub’s slugs', () => {
  it('lower-cases, drops punctuation, turns each space into a hyphen', () => {
    assert.equal(slug('How a request is handled'), 'how-a-request-is-handled')
    assert.equal(slug('FastAPI/pydantic v2 parity'), 'fastapipydantic-v2-parity')
    assert.equal(slug('`npm run dev` / `npm run messages`'), 'npm-run-dev--npm-run-messages')
    assert.equal(slug('Kafka REST v2 (`kafka-rest-v2`)'), 'kafka-rest-v2-kafka-rest-v2')
    assert.equal(slug('`KAFKA_TOPIC` and [the wire](x.md)'), 'kafka_topic-and-the-wire')
    assert.equal(slug('Über café, 100 ids!'), 'über-café-100-ids')
  })

  it('numbers repeated headings, skips code blocks, counts explicit anchors', () => {
    const md = [
      '# Title',
      '## Setup',
      '```',
      '# not a heading',
      '```',
      '### Setup ###',
      '<a id="custom-anchor"></a>',
    ].join('\n')
    assert.deepEqual([...anchors(md)].sort(), ['custom-anchor', 'setup', 'setup-1', 'title'])
  })
})

describe('checkLinks', () => {
  const repo: Record<string, string> = {
    'README.md': '# Front\n## Quick start\n',
    'docs/a.md': '# A\n## Part one\n',
    'src/x.ts': '',
  }
  const run = (files: Record<string, string>) => {
    const all = { ...repo, ...files }
    return checkLinks(Object.keys(files), Object.keys(all), (p) => all[p] ?? '')
  }

  it('accepts files, folders, anchors, root-relative paths, and leaves absolute URLs alone', () => {
    const { problems, links } = run({
      'docs/b.md': [
        '[a](a.md) [part](a.md#part-one) [up](../README.md#quick-start) [self](#b)',
        '[code](../src/x.ts) [folder](../src/) [root](/docs/a.md) [encoded](a%2Emd)',
        '[web](https://example.com/x.md) [mail](mailto:a@example.com) [proto](//cdn.test/x)',
        '# B',
      ].join('\n'),
    })
    assert.deepEqual(problems, [])
    assert.equal(links, 8)
  })

  it('fails on a missing file, a missing heading, and anything outside the repository', () => {
    const { problems } = run({
      'README.md': [
        '# Front',
        '[gone](docs/gone.md) [heading](docs/a.md#part-two)',
        '[outside](../outside/spec/x.yaml) [also](docs/../../x.md) [here](#nowhere)',
      ].join('\n'),
    })
    assert.deepEqual(problems, [
      {
        file: 'README.md',
        line: 2,
        target: 'docs/gone.md',
        reason: 'no such file in the repository: docs/gone.md',
      },
      {
        file: 'README.md',
        line: 2,
        target: 'docs/a.md#part-two',
        reason: 'no heading #part-two in docs/a.md',
      },
      {
        file: 'README.md',
        line: 3,
        target: '../outside/spec/x.yaml',
        reason: 'points outside the repository',
      },
      {
        file: 'README.md',
        line: 3,
        target: 'docs/../../x.md',
        reason: 'points outside the repository',
      },
      {
        file: 'README.md',
        line: 3,
        target: '#nowhere',
        reason: 'no heading #nowhere in README.md',
      },
    ])
  })
})

describe('the CLI on a scratch repository', () => {
  const root = mkdtempSync(join(tmpdir(), 'check-links-'))
  after(() => rmSync(root, { recursive: true, force: true }))
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  const cli = () => spawnSync(process.execPath, [CLI, root], { cwd: root, encoding: 'utf8' })
  assert.equal(spawnSync('git', ['init', '-q'], { cwd: root }).status, 0)
  write('.gitignore', 'ignored.md\n')

  it('exits 1 and names each broken link, including one to an ignored (untracked) file', () => {
    write('README.md', '# R\nSee [docs](docs/guide.md), [local](ignored.md).\n')
    write('docs/guide.md', '# Guide\n[back](../README.md#r) [missing](setup.md)\n')
    write('ignored.md', '# not part of the repository\n')
    const res = cli()
    assert.equal(res.status, 1, res.stdout)
    assert.equal(
      res.stderr,
      [
        'README.md:2: ignored.md: no such file in the repository: ignored.md',
        'docs/guide.md:2: setup.md: no such file in the repository: docs/setup.md',
        'check-links: 2 broken of 4 relative links',
        '',
      ].join('\n'),
    )
  })

  it('exits 0 and says what it checked once every link resolves', () => {
    write('README.md', '# R\nSee [docs](docs/guide.md).\n')
    write('docs/setup.md', '# Setup\n')
    const res = cli()
    assert.equal(res.status, 0, res.stderr)
    assert.equal(
      res.stdout,
      'check-links: 3 relative links in 3 files resolve (README.md, docs/guide.md, docs/setup.md)\n',
    )
  })
})
