/**
 * `npm run test:keys`: the keys CLI for real, against local state in a temporary directory,
 * through wrangler, and against the worker itself (`wrangler dev` on that same state). Every
 * wrangler call starts a local runtime (seconds each), so the checks are grouped to need few.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ApiKeyRecordSchema } from '../src/auth/key-record.ts'
import { hashKey, listKeyRecords, newApiKey, putKeyRecord } from './lib/keys.ts'
import { wrangler } from './lib/kv.ts'
import { type DevWorker, localState, startWranglerDev } from './lib/kv-selftest.ts'

const local = localState('keys', new URL('./keys.ts', import.meta.url))
const state = local.dir
const TARGET = local.args
const LOCAL = local.target
/** Runs `npm run keys -- <args>` the way npm does, against the temporary state. */
const keys = local.run

/** What `wrangler kv key get --local` reads under a hash: the stored text, or null. */
function stored(hash: string): string | null {
  const text = wrangler(['kv', 'key', 'get', '--binding', 'API_KEYS', ...TARGET, '--text', hash])
  return text.trim() === 'Value not found' ? null : text
}

function create(user: string, ...projects: string[]) {
  const run = keys('create', '--user', user, ...projects.flatMap((p) => ['--project', p]))
  assert.equal(run.status, 0, run.stderr)
  const key = run.stdout.trim()
  return { key, hash: hashKey(key), stderr: run.stderr }
}

const allFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? allFiles(path) : [path]
  })

// The worker under `wrangler dev` on the same state, booting while the CLI checks run.
let dev: DevWorker | undefined

before(async () => {
  dev = await startWranglerDev(state, {
    // Configuration enough to get past the configuration check; nothing here reaches Kafka.
    UPSTASH_KAFKA_REST_URL: 'http://127.0.0.1:9',
    UPSTASH_KAFKA_REST_USERNAME: 'selftest',
    UPSTASH_KAFKA_REST_PASSWORD: 'selftest',
  })
})

after(() => {
  dev?.stop()
  local.remove()
})

describe('npm run keys', () => {
  it('never makes a key that a command line would read as an option', () => {
    // One draw in 32 used to start with '-' or '_': 500 draws would show it almost surely.
    for (let i = 0; i < 500; i++) assert.match(newApiKey(), /^[A-Za-z0-9][A-Za-z0-9_-]{42}$/)
  })

  it('create: a strong key printed once, only its SHA-256 record stored', () => {
    const { key, hash, stderr } = create('VXNlcjoxMjM0', 'acme/support-bot', 'acme2/*')
    assert.match(key, /^[A-Za-z0-9][A-Za-z0-9_-]{42}$/, '32 random bytes, URL-safe base64')
    assert.match(stderr, new RegExp(`stored as ${hash.slice(0, 12)}`))
    const text = stored(hash)
    assert.ok(text, 'the record is in local KV under the hash')
    const record = ApiKeyRecordSchema.parse(JSON.parse(text))
    assert.deepEqual(
      { wb_user_id: record.wb_user_id, projects: record.projects },
      { wb_user_id: 'VXNlcjoxMjM0', projects: ['acme/support-bot', 'acme2/*'] },
    )
    assert.ok(Date.now() - Date.parse(record.created ?? '') < 120_000, 'created is now')
    for (const file of allFiles(state)) {
      assert.ok(!readFileSync(file).includes(key), `the raw key is written to ${file}`)
    }
  })

  it('create refuses what the worker could never match, and a missing target; nothing is written', () => {
    for (const args of [
      ['--user', 'refused'],
      ['--project', 'acme/bot'],
      ['--user', 'refused', '--project', 'acme'],
      ['--user', 'refused', '--project', 'acme/bot/x'],
      ['--user', 'refused', '--project', '*/*'],
    ]) {
      const run = keys('create', ...args)
      assert.equal(run.status, 2, args.join(' '))
      assert.equal(run.stdout, '', 'no key printed')
    }
    const noTarget = local.bare('create', '--user', 'refused')
    assert.equal(noTarget.status, 2)
    assert.match(noTarget.stderr, /--local, --remote or --env/)
    const json = keys('list', '--json')
    const users = (JSON.parse(json.stdout) as { wb_user_id?: string }[]).map((k) => k.wb_user_id)
    assert.ok(!users.includes('refused'), json.stdout)
  })

  it('list: hash prefix, user, created and projects; hand-written and broken records too', () => {
    const { hash } = create('dXNlcjpsaXN0', 'listco/*')
    // A record written without metadata (as by hand, README's old recipe) and a broken one.
    wrangler([
      'kv',
      'key',
      'put',
      '--binding',
      'API_KEYS',
      ...TARGET,
      'f'.repeat(64),
      '{"wb_user_id":"by-hand","projects":["hand/made"]}',
    ])
    wrangler(['kv', 'key', 'put', '--binding', 'API_KEYS', ...TARGET, 'e'.repeat(64), 'not json'])
    const table = keys('list')
    assert.equal(table.status, 0, table.stderr)
    const line = table.stdout.split('\n').find((l) => l.startsWith(hash.slice(0, 12)))
    assert.ok(line, table.stdout)
    assert.match(line, /^[0-9a-f]{12} +dXNlcjpsaXN0 +\d{4}-\d\d-\d\dT[\d:.]+Z +listco\/\*$/)
    assert.ok(!table.stdout.includes(hash.slice(12)), 'only a prefix of the hash is shown')
    assert.match(table.stdout, /^ffffffffffff +by-hand +- +hand\/made$/m)
    assert.match(table.stdout, /^eeeeeeeeeeee +\(not a valid record\)/m)

    const json = JSON.parse(keys('list', '--json').stdout) as Record<string, unknown>[]
    assert.deepEqual(
      json.find((k) => k.hash === hash),
      {
        hash,
        wb_user_id: 'dXNlcjpsaXN0',
        projects: ['listco/*'],
        created: json.find((k) => k.hash === hash)?.created,
      },
    )
    assert.deepEqual(
      json.find((k) => k.hash === 'e'.repeat(64)),
      { hash: 'e'.repeat(64) },
    )
  })

  it('revoke by key and by hash prefix', () => {
    const byKey = create('cmV2b2tl', 'rev/one')
    const run = keys('revoke', byKey.key)
    assert.equal(run.status, 0, run.stderr)
    assert.match(run.stdout, new RegExp(`revoked ${byKey.hash.slice(0, 12)}`))
    assert.equal(stored(byKey.hash), null)

    const byPrefix = create('cmV2b2tl', 'rev/two')
    assert.equal(keys('revoke', byPrefix.hash.slice(0, 10)).status, 0)
    assert.equal(stored(byPrefix.hash), null)
  })

  it('revoke refuses ambiguous, unknown and too short prefixes, and unknown keys', () => {
    const twins = ['abcdef0111', 'abcdef0122'].map((p) => p + '0'.repeat(54))
    for (const hash of twins) putKeyRecord(LOCAL, hash, { wb_user_id: 'twin', projects: ['t/t'] })
    const ambiguous = keys('revoke', 'abcdef01')
    assert.equal(ambiguous.status, 1)
    assert.match(ambiguous.stderr, /ambiguous prefix abcdef01: 2 keys match, nothing revoked/)
    assert.equal(keys('revoke', 'abcdef0199').status, 1, 'unknown prefix')
    assert.equal(keys('revoke', 'abcdef0').status, 2, 'shorter than 8 hex digits')
    const unknown = keys('revoke', 'not-a-key')
    assert.equal(unknown.status, 1, 'unknown key')
    assert.ok(!unknown.stderr.includes('not-a-key'), 'a key is never echoed')
    assert.equal(keys('revoke', 'abcdef0111').status, 0, 'a unique prefix')
    assert.deepEqual(
      listKeyRecords(LOCAL, 'abcdef01').map((k) => k.hash),
      [twins[1]],
    )
  })
})

describe('the worker (wrangler dev on the same local state) honours the CLI', () => {
  /** POSTs an empty body with the key; retried while wrangler dev (re)starts. */
  async function score(key: string): Promise<number> {
    const res = await (dev as DevWorker).fetch('/calls/score', {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`api:${key}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: '{}',
    })
    await res.arrayBuffer()
    return res.status
  }

  it('a created key authenticates (the empty body then fails validation); revoked, it is a 401', async () => {
    const { key } = create('ZTJl', 'e2e/*')
    assert.equal(await score(key), 422)
    assert.equal(keys('revoke', key).status, 0)
    assert.equal(await score(key), 401)
  })
})
