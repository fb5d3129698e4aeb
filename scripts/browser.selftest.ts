/**
 * `npm run test:browser`: CORS in a real browser. `npm start` serves the production bundle under
 * workerd against the real local sink, with one page origin allowed (`CORS_ALLOWED_ORIGINS`); a
 * small HTTP server serves the test page on that origin and on a second, disallowed one; headless
 * Chromium (Debian's `/usr/bin/chromium`, driven by playwright-core) calls `POST /calls/score` from
 * the page's `fetch` with the headers Weave's generated clients send. Only loopback is reached:
 * the browser resolves every other host name to nothing. A screenshot of the allowed page is
 * written to `test-artifacts/browser/` (ignored by git); its path is printed.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer as createHttpServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { type RunningSink, startSink } from '../dev/sink/sink.ts'
import { freePort } from './lib/ports.ts'
import { writeApiKeysFile } from './lib/selfhosted.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const TOPIC = 'browser.score_calls'
const ARTIFACTS = resolve('test-artifacts/browser')
const apiKey = randomBytes(24).toString('hex')
const dir = mkdtempSync(join(tmpdir(), 'browser-selftest-'))

/** What a generated client adds to every call (Stainless's Python client, and Weave's retry id). */
const CLIENT_HEADERS = {
  accept: 'application/json',
  'content-type': 'application/json',
  'x-stainless-lang': 'js',
  'x-stainless-package-version': '0.0.1',
  'x-stainless-os': 'Linux',
  'x-stainless-arch': 'x64',
  'x-stainless-runtime': 'browser:chrome',
  'x-stainless-runtime-version': '150.0.0',
  'x-stainless-async': 'false',
  'x-stainless-retry-count': '0',
  'x-stainless-read-timeout': '60.0',
  'x-stainless-timeout': '60',
  'x-weave-retry-id': 'browser-retry-1',
}

const BODY = {
  project_id: 'acme/bot',
  call_ids: ['0190a1b2-0000-7000-8000-000000000001'],
  scorer_refs: ['weave:///acme/bot/object/Toxicity:9f2c'],
  wb_user_id: null,
}

/**
 * The test page: a results table, and `callWorker`, which fetches and adds a row for what it got
 * (or for the error). Nothing is fetched but the worker.
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>calls/score from a browser</title>
<style>body{font:14px system-ui;margin:24px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
table{border-collapse:collapse}code{font-size:12px}</style></head>
<body><h1>POST /calls/score from <span id="origin"></span></h1>
<table><thead><tr><th>call</th><th>status</th><th>X-Request-Id</th><th>Retry-After</th><th>body or error</th></tr></thead>
<tbody id="rows"></tbody></table>
<script>
document.getElementById('origin').textContent = location.origin
function addRow(cells) {
  const tr = document.createElement('tr')
  for (const text of cells) {
    const td = document.createElement('td')
    const code = document.createElement('code')
    code.textContent = text
    td.appendChild(code)
    tr.appendChild(td)
  }
  document.getElementById('rows').appendChild(tr)
}
async function callWorker({ label, url, headers, body }) {
  try {
    const res = await fetch(url, { method: 'POST', headers, body })
    const text = await res.text()
    const answer = {
      ok: true,
      status: res.status,
      body: text,
      requestId: res.headers.get('x-request-id'),
      retryAfter: res.headers.get('retry-after'),
      shouldRetry: res.headers.get('x-should-retry'),
    }
    addRow([label, String(res.status), answer.requestId ?? '-', answer.retryAfter ?? '-', text])
    return answer
  } catch (e) {
    const error = e.name + ': ' + e.message
    addRow([label, '-', '-', '-', error])
    return { ok: false, error }
  }
}
</script></body></html>`

function servePage(): Promise<{ server: Server; origin: string }> {
  const server = createHttpServer((req, res) => {
    if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(PAGE)
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  return new Promise((resolveServer) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      resolveServer({ server, origin: `http://127.0.0.1:${port}` })
    })
  })
}

type PageAnswer =
  | {
      ok: true
      status: number
      body: string
      requestId: string | null
      retryAfter: string | null
      shouldRetry: string | null
    }
  | { ok: false; error: string }

type Call = { label: string; url: string; headers: Record<string, string>; body: string }
/** What the page defines (its script above); page.evaluate's functions run there, closures and all left behind. */
type PageApi = {
  callWorker(call: Call): Promise<PageAnswer>
  addRow(cells: string[]): void
}
/** One `fetch` from inside the page, its outcome added to the page's table. */
const pageFetch = (page: Page, call: Call): Promise<PageAnswer> =>
  page.evaluate((c) => (globalThis as unknown as PageApi).callWorker(c), call)

const exited = (child: ChildProcess): Promise<number | null> =>
  new Promise((resolveExit) => {
    if (child.exitCode !== null) resolveExit(child.exitCode)
    else child.once('exit', (code) => resolveExit(code))
  })

describe('a browser page calling the worker', {
  skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}`,
}, () => {
  let sink: RunningSink
  let worker: ChildProcess | undefined
  let output = ''
  let allowed: { server: Server; origin: string }
  let disallowed: { server: Server; origin: string }
  let browser: BrowserContext
  let page: Page
  let workerUrl = ''
  const password = `sink-${randomBytes(8).toString('hex')}`
  const basic = (key: string) => `Basic ${Buffer.from(`api:${key}`).toString('base64')}`

  before(async () => {
    sink = await startSink({ port: 0, username: 'browser', password })
    allowed = await servePage()
    disallowed = await servePage()
    const keysFile = join(dir, 'api-keys.json')
    writeApiKeysFile(keysFile, apiKey, { wb_user_id: 'VXNlcjox', projects: ['acme/*'] })
    const port = await freePort()
    workerUrl = `http://127.0.0.1:${port}`
    worker = spawn(process.execPath, ['scripts/start.ts'], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        PORT: String(port),
        API_KEYS_FILE: keysFile,
        SELFHOSTED_STATE_DIR: join(dir, 'state'),
        CORS_ALLOWED_ORIGINS: allowed.origin,
        KAFKA_TOPIC: TOPIC,
        UPSTASH_KAFKA_REST_URL: sink.url,
        UPSTASH_KAFKA_REST_USERNAME: 'browser',
        UPSTASH_KAFKA_REST_PASSWORD: password,
        KAFKA_PRODUCE_TIMEOUT_MS: '1000',
        KAFKA_PRODUCE_RETRIES: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    worker.stdout?.on('data', (c: Buffer) => {
      output += c.toString()
    })
    worker.stderr?.on('data', (c: Buffer) => {
      output += c.toString()
    })
    const deadline = Date.now() + 90_000
    while (!output.includes(`on ${workerUrl}`)) {
      if (worker.exitCode !== null) assert.fail(`npm start exited:\n${output}`)
      if (Date.now() > deadline) assert.fail(`npm start did not come up:\n${output}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    // A fresh profile in the temporary directory (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      viewport: { width: 1200, height: 520 },
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // Nothing but loopback: every other host name resolves to nothing.
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ],
    })
    page = browser.pages()[0] ?? (await browser.newPage())
    await page.goto(`${allowed.origin}/`)
  })

  after(async () => {
    await browser?.close()
    worker?.kill('SIGTERM')
    if (worker) await exited(worker)
    await sink?.close()
    allowed?.server.close()
    disallowed?.server.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const score = (label: string, over: { key?: string; body?: unknown } = {}) =>
    pageFetch(page, {
      label,
      url: `${workerUrl}/calls/score`,
      headers: { ...CLIENT_HEADERS, authorization: basic(over.key ?? apiKey) },
      body: JSON.stringify(over.body ?? BODY),
    })

  it('the allowed origin reads a 200 {} and its X-Request-Id; the job lands on Kafka', async () => {
    const answer = await score('accepted')
    assert.ok(answer.ok, `fetch failed: ${!answer.ok && answer.error}`)
    assert.equal(answer.status, 200)
    assert.equal(answer.body, '{}')
    assert.match(answer.requestId ?? '', /^[0-9a-f-]{36}$/)
    const [message] = sink.messages(TOPIC)
    assert.equal(
      message?.value,
      '{"project_id":"acme/bot","call_ids":["0190a1b2-0000-7000-8000-000000000001"],"scorer_refs":["weave:///acme/bot/object/Toxicity:9f2c"],"wb_user_id":"VXNlcjox"}',
    )
  })

  it('reads a 422 body', async () => {
    const answer = await score('invalid body', { body: { ...BODY, call_ids: [1] } })
    assert.ok(answer.ok, `fetch failed: ${!answer.ok && answer.error}`)
    assert.equal(answer.status, 422)
    assert.equal(
      answer.body,
      '{"detail":[{"type":"string_type","loc":["body","call_ids",0],"msg":"Input should be a valid string","input":1}]}',
    )
    assert.ok(answer.requestId)
  })

  it('reads a 401', async () => {
    const answer = await score('wrong key', { key: 'not-a-key' })
    assert.ok(answer.ok, `fetch failed: ${!answer.ok && answer.error}`)
    assert.equal(answer.status, 401)
    assert.equal(answer.body, '{"detail":"Invalid authentication credentials"}')
  })

  it('reads a 503 with Retry-After when Kafka is down (no queue in self-hosted mode)', async () => {
    const res = await fetch(`${sink.url}/__sink/fault`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'status', status: 500, times: 1, topic: TOPIC }),
    })
    assert.equal(res.status, 200)
    const answer = await score('Kafka down')
    assert.ok(answer.ok, `fetch failed: ${!answer.ok && answer.error}`)
    assert.equal(answer.status, 503)
    assert.equal(
      answer.body,
      '{"detail":"Kafka is unavailable: the scoring jobs were not accepted. Retry later."}',
    )
    assert.equal(answer.retryAfter, '5')
    assert.ok(answer.requestId)
    assert.equal(answer.shouldRetry, null)
  })

  it('a disallowed origin is blocked by the browser: TypeError: Failed to fetch', async () => {
    const other = await browser.newPage()
    try {
      await other.goto(`${disallowed.origin}/`)
      const before = sink.messages(TOPIC).length
      const answer = await pageFetch(other, {
        label: 'disallowed origin',
        url: `${workerUrl}/calls/score`,
        headers: { ...CLIENT_HEADERS, authorization: basic(apiKey) },
        body: JSON.stringify(BODY),
      })
      assert.deepEqual(answer, { ok: false, error: 'TypeError: Failed to fetch' })
      // The preflight failed, so the request itself was never sent.
      assert.equal(sink.messages(TOPIC).length, before)
      // Shown on the screenshot's page too.
      await page.evaluate(
        (cells) => (globalThis as unknown as PageApi).addRow(cells),
        [`from ${disallowed.origin} (not allowed)`, '-', '-', '-', answer.error],
      )
    } finally {
      await other.close()
    }
  })

  it('writes a screenshot of the test page', async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    const path = join(ARTIFACTS, 'calls-score.png')
    await page.screenshot({ path, fullPage: true })
    assert.ok(existsSync(path))
    console.log(`screenshot: ${path}`)
  })
})
