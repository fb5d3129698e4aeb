/**
 * Self-hosted mode end to end (`node --test scripts/start.selftest.ts`): `npm start`'s script
 * builds the production bundle and serves it under workerd with an API_KEYS_FILE (and, in the
 * internal id form, a PROJECT_IDS_FILE), against the real local sink; what lands on the sink is
 * checked byte for byte.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type RunningSink, startSink } from '../dev/sink/sink.ts'
import { freePort } from './lib/ports.ts'
import { stopGroup, untilServing } from './lib/processes.ts'
import { readWorkerSettings, renderConfig, writeApiKeysFile } from './lib/selfhosted.ts'
import { createCa } from './lib/tls-certs.ts'

const TOPIC = 'selftest.score_calls'
const apiKey = randomBytes(24).toString('hex')
const basic = (key: string) => `Basic ${Buffer.from(`api:${key}`).toString('base64')}`
const dir = mkdtempSync(join(tmpdir(), 'selfhosted-selftest-'))

/** Runs scripts/start.ts; resolves with its output once it exits. */
function start(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let output = ''
  const child = spawn(process.execPath, ['scripts/start.ts'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString()
  })
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString()
  })
  return { child, output: () => output }
}

const exited = (child: ChildProcess): Promise<number | null> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    else child.once('exit', (code) => resolve(code))
  })

describe('npm start (self-hosted mode)', () => {
  let sink: RunningSink
  let server: ReturnType<typeof start>
  let url = ''
  const password = `sink-${randomBytes(8).toString('hex')}`

  before(async () => {
    sink = await startSink({ port: 0, username: 'selftest', password })
    const keysFile = join(dir, 'api-keys.json')
    writeApiKeysFile(keysFile, apiKey, { wb_user_id: 'VXNlcjox', projects: ['acme/*'] })
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    server = start({
      PORT: String(port),
      API_KEYS_FILE: keysFile,
      SELFHOSTED_STATE_DIR: join(dir, 'state'),
      KAFKA_TOPIC: TOPIC,
      UPSTASH_KAFKA_REST_URL: sink.url,
      UPSTASH_KAFKA_REST_USERNAME: 'selftest',
      UPSTASH_KAFKA_REST_PASSWORD: password,
      KAFKA_PRODUCE_TIMEOUT_MS: '1000',
    })
    const deadline = Date.now() + 60_000
    while (!server.output().includes(`on ${url}`)) {
      if (server.child.exitCode !== null) assert.fail(`npm start exited:\n${server.output()}`)
      if (Date.now() > deadline) assert.fail(`npm start did not come up:\n${server.output()}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  })

  after(async () => {
    server?.child.kill('SIGTERM')
    if (server) await exited(server.child)
    await sink?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const score = (key: string, body: unknown) =>
    fetch(`${url}/calls/score`, {
      method: 'POST',
      headers: { authorization: basic(key), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })

  it('accepts a request from API_KEYS_FILE and its job lands on Kafka byte for byte', async () => {
    const answer = await score(apiKey, {
      project_id: 'acme/bot',
      call_ids: ['c1', 'c2', 'c1'],
      scorer_refs: ['weave:///acme/bot/object/Toxicity:9f2c'],
      wb_user_id: 'ignored',
    })
    assert.equal(answer.status, 200)
    assert.equal(await answer.text(), '{}')
    const [message, ...rest] = sink.messages(TOPIC)
    assert.equal(rest.length, 0)
    assert.equal(message?.key, 'acme/bot')
    assert.equal(
      message?.value,
      '{"project_id":"acme/bot","call_ids":["c1","c2"],"scorer_refs":["weave:///acme/bot/object/Toxicity:9f2c"],"wb_user_id":"VXNlcjox"}',
    )
  })

  it('refuses a key that is not in the file, and a project the key does not grant', async () => {
    const unknown = await score('not-a-key', {
      project_id: 'acme/bot',
      call_ids: [],
      scorer_refs: [],
    })
    assert.equal(unknown.status, 401)
    assert.match(unknown.headers.get('www-authenticate') ?? '', /^Basic realm="weave"/)
    const foreign = await score(apiKey, {
      project_id: 'other/bot',
      call_ids: ['c'],
      scorer_refs: [],
    })
    assert.equal(foreign.status, 403)
  })

  it('without the fallback queue, a Kafka failure is a 503 with Retry-After', async () => {
    sink.setFault({ kind: 'status', status: 500, times: 2 })
    const answer = await score(apiKey, {
      project_id: 'acme/bot',
      call_ids: ['c3'],
      scorer_refs: [],
    })
    assert.equal(answer.status, 503)
    assert.equal(answer.headers.get('retry-after'), '5')
    sink.setFault(null)
  })

  it('serves on loopback only and keeps secrets out of the generated config', () => {
    const config = readFileSync(join(dir, 'state', 'config.capnp'), 'utf8')
    assert.match(config, new RegExp(`address = "127\\.0\\.0\\.1:${new URL(url).port}"`))
    assert.ok(!config.includes(password), 'the Kafka password is read from the environment')
    assert.match(config, /fromEnvironment = "UPSTASH_KAFKA_REST_PASSWORD"/)
  })

  it("serves the Worker's own Durable Objects (the native producer shards), in memory", () => {
    const config = readFileSync(join(dir, 'state', 'config.capnp'), 'utf8')
    assert.match(
      config,
      /\(name = "KAFKA_PRODUCERS", durableObjectNamespace = \(className = "KafkaProducerShard"\)\)/,
    )
    assert.match(config, /durableObjectNamespaces = \[\(className = "KafkaProducerShard", /)
    assert.match(config, /durableObjectStorage = \(inMemory = void\)/)
    assert.doesNotMatch(server.output(), /off in self-hosted mode: .*KAFKA_PRODUCERS/)
  })

  it('stops workerd when stopped', async () => {
    server.child.kill('SIGTERM')
    assert.equal(await exited(server.child), 0)
    await assert.rejects(fetch(`${url}/health`))
  })
})

/** Starts `npm start` with `env` and waits until it serves `url`. */
async function startServing(env: Record<string, string>, url: string) {
  const server = start(env)
  const deadline = Date.now() + 60_000
  while (!server.output().includes(`on ${url}`)) {
    if (server.child.exitCode !== null) assert.fail(`npm start exited:\n${server.output()}`)
    if (Date.now() > deadline) assert.fail(`npm start did not come up:\n${server.output()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return server
}

describe('npm start in the internal id form (KAFKA_ID_FORM=internal, PROJECT_IDS_FILE)', () => {
  const topic = 'selftest.internal'
  const internalDir = mkdtempSync(join(tmpdir(), 'selfhosted-selftest-'))
  let sink: RunningSink
  let server: ReturnType<typeof start>
  let url = ''

  before(async () => {
    sink = await startSink({ port: 0, username: 'selftest', password: 'selftest' })
    const keysFile = join(internalDir, 'api-keys.json')
    writeApiKeysFile(keysFile, apiKey, { wb_user_id: 'VXNlcjox', projects: ['acme/*', 'équipe/*'] })
    const projectsFile = join(internalDir, 'project-ids.json')
    writeFileSync(
      projectsFile,
      JSON.stringify({
        'acme/bot': 'UHJvamVjdEludGVybmFsSWQ6MTAx',
        'équipe/机器人': 'w6lxdWlwZS/mnLrlmajkuro=',
      }),
    )
    const port = await freePort()
    url = `http://127.0.0.1:${port}`
    server = await startServing(
      {
        PORT: String(port),
        API_KEYS_FILE: keysFile,
        PROJECT_IDS_FILE: projectsFile,
        KAFKA_ID_FORM: 'internal',
        SELFHOSTED_STATE_DIR: join(internalDir, 'state'),
        KAFKA_TOPIC: topic,
        UPSTASH_KAFKA_REST_URL: sink.url,
        UPSTASH_KAFKA_REST_USERNAME: 'selftest',
        UPSTASH_KAFKA_REST_PASSWORD: 'selftest',
      },
      url,
    )
    assert.match(server.output(), /with 1 API key\(s\) and 2 project id\(s\)/)
  })

  after(async () => {
    server?.child.kill('SIGTERM')
    if (server) await exited(server.child)
    await sink?.close()
    rmSync(internalDir, { recursive: true, force: true })
  })

  const score = (body: unknown) =>
    fetch(`${url}/calls/score`, {
      method: 'POST',
      headers: { authorization: basic(apiKey), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })

  it('produces the internal ids from PROJECT_IDS_FILE, byte for byte', async () => {
    const answer = await score({
      project_id: 'acme/bot',
      call_ids: ['c1'],
      scorer_refs: [
        'weave:///acme/bot/object/Toxicity:9f2c',
        'weave:///équipe/机器人/op/Juge:1/attr/x',
      ],
    })
    assert.equal(answer.status, 200, await answer.text())
    const [message, ...rest] = sink.messages(topic)
    assert.equal(rest.length, 0)
    assert.equal(message?.key, 'UHJvamVjdEludGVybmFsSWQ6MTAx')
    assert.equal(
      message?.value,
      '{"project_id":"UHJvamVjdEludGVybmFsSWQ6MTAx","call_ids":["c1"],"scorer_refs":["weave-trace-internal:///UHJvamVjdEludGVybmFsSWQ6MTAx/object/Toxicity:9f2c","weave-trace-internal:///w6lxdWlwZS/mnLrlmajkuro=/op/Juge:1/attr/x"],"wb_user_id":"VXNlcjox"}',
    )
  })

  it('a granted project the file does not list is a 404, and nothing is produced', async () => {
    const answer = await score({ project_id: 'acme/unlisted', call_ids: ['c2'], scorer_refs: [] })
    assert.equal(answer.status, 404)
    assert.equal(await answer.text(), '{"detail":"Project not found: acme/unlisted"}')
    assert.equal(sink.messages(topic).length, 1)
  })
})

describe('npm start refuses a bad PROJECT_IDS_FILE, and the internal form without one', () => {
  const badDir = mkdtempSync(join(tmpdir(), 'selfhosted-selftest-'))
  after(() => rmSync(badDir, { recursive: true, force: true }))
  const keysFile = join(badDir, 'keys.json')
  writeFileSync(keysFile, '{}')

  it('names every bad entry and exits 2 before building anything', async () => {
    const projectsFile = join(badDir, 'bad-projects.json')
    writeFileSync(projectsFile, JSON.stringify({ 'no-slash': 'X', 'acme/bot': 'has space' }))
    const run = start({ API_KEYS_FILE: keysFile, PROJECT_IDS_FILE: projectsFile })
    assert.equal(await exited(run.child), 2)
    assert.match(run.output(), /no-slash: not an external project id/)
    assert.match(run.output(), /acme\/bot: the internal id must be/)
  })

  it('exits 2 when KAFKA_ID_FORM is internal and PROJECT_IDS_FILE is not set', async () => {
    const run = start({ API_KEYS_FILE: keysFile, KAFKA_ID_FORM: 'internal' })
    assert.equal(await exited(run.child), 2)
    assert.match(run.output(), /PROJECT_IDS_FILE is not set/)
  })
})

describe('npm start with the native transport, PLAINTEXT and no SASL', () => {
  const nativeDir = mkdtempSync(join(tmpdir(), 'selfhosted-selftest-'))
  let server: ReturnType<typeof start> | undefined
  after(async () => {
    server?.child.kill('SIGTERM')
    if (server) await exited(server.child)
    rmSync(nativeDir, { recursive: true, force: true })
  })

  it('needs no KAFKA_USERNAME/KAFKA_PASSWORD, and names a broker host DNS does not resolve', async () => {
    const keysFile = join(nativeDir, 'api-keys.json')
    writeApiKeysFile(keysFile, apiKey, { wb_user_id: 'VXNlcjox', projects: ['acme/*'] })
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    // No secret at all in the environment: workerd binds each unset one as null.
    server = await startServing(
      {
        PORT: String(port),
        API_KEYS_FILE: keysFile,
        SELFHOSTED_STATE_DIR: join(nativeDir, 'state'),
        KAFKA_TRANSPORT: 'native',
        KAFKA_BROKERS: 'kafka.invalid:9092',
        KAFKA_TLS: 'false',
        KAFKA_PRODUCE_TIMEOUT_MS: '1000',
      },
      url,
    )
    assert.match(
      server.output(),
      /KAFKA_BROKERS: the host kafka\.invalid does not resolve \(DNS ENOTFOUND\)/,
    )
    const res = await fetch(`${url}/calls/score`, {
      method: 'POST',
      headers: { authorization: basic(apiKey), 'content-type': 'application/json' },
      body: JSON.stringify({ project_id: 'acme/bot', call_ids: ['c1'], scorer_refs: [] }),
    })
    const body = (await res.json()) as { detail: string }
    // The broker cannot be reached: a 503, but not a misconfiguration.
    assert.equal(res.status, 503)
    assert.notEqual(body.detail, 'Service misconfigured')
    assert.doesNotMatch(server.output(), /config_problems/)
  })
})

describe('npm start refuses a bad API_KEYS_FILE', () => {
  const badDir = mkdtempSync(join(tmpdir(), 'selfhosted-selftest-'))
  after(() => rmSync(badDir, { recursive: true, force: true }))

  it('names the problem and exits 2 before building anything', async () => {
    const keysFile = join(badDir, 'bad-keys.json')
    writeFileSync(
      keysFile,
      JSON.stringify({ 'not-a-hash': { wb_user_id: '', projects: 'acme/*' } }),
    )
    const run = start({ API_KEYS_FILE: keysFile })
    assert.equal(await exited(run.child), 2)
    assert.match(run.output(), /lowercase hex SHA-256/)
    assert.match(run.output(), /expected \{"wb_user_id"/)
  })

  it('exits 2 when API_KEYS_FILE is not set', async () => {
    const run = start({})
    assert.equal(await exited(run.child), 2)
    assert.match(run.output(), /API_KEYS_FILE is not set/)
  })
})

// Produce over TLS with a private CA is tested against real brokers (npm run test:kafka,
// test/kafka/tls.*.test.ts); here, what npm start does with the file.
describe('npm start with TRUSTED_CA_FILE', () => {
  const caDir = mkdtempSync(join(tmpdir(), 'selfhosted-selftest-'))
  after(() => rmSync(caDir, { recursive: true, force: true }))

  it('exits 2 when the file holds no certificate', async () => {
    const keysFile = join(caDir, 'keys.json')
    writeApiKeysFile(keysFile, apiKey, { wb_user_id: 'u', projects: ['acme/*'] })
    const caFile = join(caDir, 'not-a-ca.pem')
    writeFileSync(caFile, 'hello\n')
    const run = start({ API_KEYS_FILE: keysFile, TRUSTED_CA_FILE: caFile })
    assert.equal(await exited(run.child), 2)
    assert.match(run.output(), /TRUSTED_CA_FILE .*no PEM certificate/)
  })

  it("writes each certificate into workerd's trusted certificates, the public CAs kept", () => {
    const ca = createCa(join(caDir, 'ca'))
    const pem = readFileSync(ca.certFile, 'utf8')
    const config = renderConfig({
      bundle: { dir: caDir, main: 'index.js' },
      settings: readWorkerSettings('wrangler.toml'),
      stateDir: caDir,
      host: '127.0.0.1',
      port: 8787,
      trustedCaFile: ca.certFile,
    })
    const network = /\(name = "internet", network = \((.*)\)\),\n/.exec(config)?.[1] ?? ''
    assert.match(
      network,
      /trustBrowserCas = true, trustedCertificates = \["-----BEGIN CERTIFICATE-----\\x0a/,
    )
    assert.ok(network.includes(pem.trim().split('\n')[1] ?? '?'), 'the certificate itself')
  })
})

describe("npm start's own defaults", () => {
  const render = (env: NodeJS.ProcessEnv) =>
    renderConfig({
      bundle: { dir: tmpdir(), main: 'index.js' },
      settings: readWorkerSettings('wrangler.toml'),
      stateDir: tmpdir(),
      host: '127.0.0.1',
      port: 8787,
      env,
    })

  it('runs one producer shard (one JavaScript thread), unless the environment says otherwise', () => {
    const toml = readFileSync('wrangler.toml', 'utf8')
    assert.match(toml, /^KAFKA_PRODUCER_SHARDS = "2"$/m, "wrangler.toml's default for Cloudflare")
    assert.ok(render({}).includes('(name = "KAFKA_PRODUCER_SHARDS", text = "1")'))
    const set = render({ KAFKA_PRODUCER_SHARDS: '4' })
    assert.ok(
      set.includes('(name = "KAFKA_PRODUCER_SHARDS", fromEnvironment = "KAFKA_PRODUCER_SHARDS")'),
    )
  })
})

describe('waiting for a server to serve (untilServing)', () => {
  it('counts a probe whose body outlasts its second as not up yet, and keeps polling', async () => {
    // The first answer sends its head and stalls its body past the probe's bound (wrangler dev
    // under load did this); the next ones answer at once.
    let probes = 0
    const server = createServer((_req, res) => {
      probes++
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '15' })
      if (probes === 1) {
        res.write('{"status"')
        setTimeout(() => res.end(':"ok"}'), 1500)
      } else res.end('{"status":"ok"}')
    })
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening))
    const { port } = server.address() as { port: number }
    const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' })
    try {
      const up = await untilServing(`http://127.0.0.1:${port}`, child, {
        timeoutMs: 10_000,
        intervalMs: 50,
      })
      assert.equal(up, true)
      assert.ok(probes >= 2, `probes: ${probes}`)
    } finally {
      await stopGroup(child, 'SIGTERM')
      server.closeAllConnections()
      await new Promise((closed) => server.close(closed))
    }
  })
})
