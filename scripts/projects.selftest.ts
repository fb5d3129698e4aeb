/**
 * `npm run test:projects`: the project directory CLI for real, against local state in a
 * temporary directory, through wrangler, and the worker in internal id form (`wrangler dev` on
 * that same state, producing to the real local sink). Every wrangler call starts a local runtime
 * (seconds each), so the checks are grouped to need few.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type RunningSink, startSink } from '../dev/sink/sink.ts'
import { hashKey, putKeyRecord } from './lib/keys.ts'
import { getKv, listKv, wrangler, wranglerCalls } from './lib/kv.ts'
import { type DevWorker, localState, startWranglerDev } from './lib/kv-selftest.ts'
import { listProjects } from './lib/projects.ts'

const local = localState('projects', new URL('./projects.ts', import.meta.url))
const state = local.dir
const TARGET = local.args
const LOCAL = local.target
/** Runs `npm run projects -- <args>` the way npm does, against the temporary state. */
const projects = local.run

/** Writes a JSON file in the temporary directory; returns its path. */
function file(name: string, content: unknown): string {
  const path = join(state, name)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

// The worker under `wrangler dev` on the same state, in internal form, producing to a real sink.
let dev: DevWorker | undefined
let sink: RunningSink | undefined
const apiKey = `selftest-${crypto.randomUUID()}`

before(async () => {
  sink = await startSink({ port: 0, username: 'selftest', password: 'selftest' })
  dev = await startWranglerDev(state, {
    KAFKA_ID_FORM: 'internal',
    PROJECT_IDS_CACHE_SECONDS: '0',
    UPSTASH_KAFKA_REST_URL: sink.url,
    UPSTASH_KAFKA_REST_USERNAME: 'selftest',
    UPSTASH_KAFKA_REST_PASSWORD: 'selftest',
  })
})

after(async () => {
  dev?.stop()
  await sink?.close()
  local.remove()
})

describe('npm run projects', () => {
  it('put, get, replace and delete one project', () => {
    const put = projects('put', 'acme/support-bot', 'UHJvamVjdEludGVybmFsSWQ6MTAx')
    assert.equal(put.status, 0, put.stderr)
    assert.match(put.stdout, /listed acme\/support-bot -> UHJvamVjdEludGVybmFsSWQ6MTAx/)
    const got = projects('get', 'acme/support-bot')
    assert.equal(got.status, 0, got.stderr)
    assert.equal(got.stdout, 'UHJvamVjdEludGVybmFsSWQ6MTAx\n')

    const replaced = projects('put', 'acme/support-bot', 'UHJvamVjdEludGVybmFsSWQ6MTAy')
    assert.equal(replaced.status, 0, replaced.stderr)
    assert.match(replaced.stdout, /MTAx -> UHJvamVjdEludGVybmFsSWQ6MTAy/)

    // Both directions kept: the new id's reverse entry lists the project, the old id's is gone.
    const reverse = (id: string) => getKv('PROJECT_IDS', LOCAL, `*internal/${id}`)
    assert.equal(reverse('UHJvamVjdEludGVybmFsSWQ6MTAy'), '["acme/support-bot"]')
    assert.equal(reverse('UHJvamVjdEludGVybmFsSWQ6MTAx'), undefined)
    assert.equal(projects('put', 'acme/alias', 'UHJvamVjdEludGVybmFsSWQ6MTAy').status, 0)
    assert.equal(reverse('UHJvamVjdEludGVybmFsSWQ6MTAy'), '["acme/alias","acme/support-bot"]')
    assert.equal(projects('delete', 'acme/alias').status, 0)
    assert.equal(reverse('UHJvamVjdEludGVybmFsSWQ6MTAy'), '["acme/support-bot"]')

    assert.equal(projects('delete', 'acme/support-bot').status, 0)
    assert.equal(reverse('UHJvamVjdEludGVybmFsSWQ6MTAy'), undefined)
    const gone = projects('get', 'acme/support-bot')
    assert.equal(gone.status, 1)
    assert.equal(gone.stdout, '')
    assert.match(gone.stderr, /acme\/support-bot is not listed/)
    assert.equal(projects('delete', 'acme/support-bot').status, 1, 'deleting an unlisted project')
  })

  it('refuses what the worker could never look up, and a missing target; nothing is written', () => {
    for (const args of [
      ['put', 'acme', 'ID'],
      ['put', 'acme/bot/x', 'ID'],
      ['put', 'acme/*', 'ID'],
      ['put', 'refused/bot', 'an id with spaces'],
      ['put', 'refused/bot', 'x'.repeat(1016)],
      ['put', 'refused/bot'],
      ['get'],
    ]) {
      const run = projects(...args)
      assert.equal(run.status, 2, args.join(' '))
    }
    const noTarget = local.bare('list')
    assert.equal(noTarget.status, 2)
    assert.match(noTarget.stderr, /--local, --remote or --env/)
    assert.equal(listProjects(LOCAL)['refused/bot'], undefined)
  })

  it('import: thousands of projects in one bulk write, list --json gives the same object back', () => {
    const many = Object.fromEntries(
      Array.from({ length: 2000 }, (_, i) => [`bulk${i % 7}/project-${i}`, `SW50ZXJuYWw${i}`]),
    )
    many['équipe/机器人'] = 'w6lxdWlwZS/mnLrlmajkuro='
    const run = projects('import', file('many.json', many))
    assert.equal(run.status, 0, run.stderr)
    assert.match(run.stdout, /2001 added, 0 changed, 0 unchanged, 0 removed/)
    const listed = JSON.parse(projects('list', '--json').stdout) as Record<string, string>
    for (const [project, id] of Object.entries(many)) assert.equal(listed[project], id, project)

    // A sync: one changed, one new, the rest unchanged (not rewritten); --prune drops the others.
    const next = { 'bulk0/project-0': 'changed', 'bulk1/project-1': 'SW50ZXJuYWw1', 'new/one': 'N' }
    const synced = projects('import', file('next.json', next), '--prune')
    assert.equal(synced.status, 0, synced.stderr)
    assert.match(synced.stdout, /1 added, 1 changed, 1 unchanged, 1999 removed/)
    assert.deepEqual(listProjects(LOCAL), next)
    // The reverse entries follow: exactly one per id left, each listing its projects.
    const reverse = listKv('PROJECT_IDS', LOCAL, '*internal/').map((e) => e.name)
    assert.deepEqual(reverse.sort(), ['*internal/N', '*internal/SW50ZXJuYWw1', '*internal/changed'])
    assert.equal(getKv('PROJECT_IDS', LOCAL, '*internal/changed'), '["bulk0/project-0"]')
  })

  it('import refuses a file with one bad entry, and a file that is not the object; nothing is written', () => {
    const before = listProjects(LOCAL)
    const bad = projects('import', file('bad.json', { 'good/one': 'G', 'not-a-project': 'X' }))
    assert.equal(bad.status, 1)
    assert.match(bad.stderr, /nothing imported:\n {2}not-a-project: not an external project id/)
    // An id KV's metadata cannot hold would fail the bulk write after the good entries landed.
    const long = projects(
      'import',
      file('long.json', { 'good/one': 'G', 'long/id': 'x'.repeat(1016) }),
    )
    assert.equal(long.status, 1)
    assert.match(long.stderr, /long\/id: the internal id is too long/)
    assert.equal(projects('import', file('list.json', [['a/b', 'c']])).status, 1)
    assert.equal(projects('import', file('broken.json', '{"a/b":')).status, 1)
    assert.deepEqual(listProjects(LOCAL), before)
  })

  it('list shows entries written by hand (no metadata) too', () => {
    wrangler(['kv', 'key', 'put', '--binding', 'PROJECT_IDS', ...TARGET, 'hand/made', 'SGFuZA'])
    const table = projects('list')
    assert.equal(table.status, 0, table.stderr)
    assert.match(table.stdout, /^hand\/made +SGFuZA$/m)
    assert.match(table.stdout, /^PROJECT +INTERNAL ID$/m)
  })

  it('entries written without metadata by other tools are read 100 to a wrangler call, not one each', () => {
    const seeded = Array.from({ length: 150 }, (_, i) => ({
      key: `seeded/p${i}`,
      value: `U2VlZA${i}`,
    }))
    wrangler([
      'kv',
      'bulk',
      'put',
      file('seeded.json', seeded),
      '--binding',
      'PROJECT_IDS',
      ...TARGET,
    ])
    const before = wranglerCalls()
    const listed = listProjects(LOCAL)
    // One listing, then 151 values without metadata (these and hand/made): two bulk reads.
    assert.equal(wranglerCalls() - before, 3)
    for (const { key, value } of seeded) assert.equal(listed[key], value, key)
    assert.equal(listed['hand/made'], 'SGFuZA')
  })
})

describe('the worker in internal form (wrangler dev on the same local state) honours the CLI', () => {
  /** POSTs one call id for `project`; retried while wrangler dev (re)starts. */
  async function score(project: string): Promise<number> {
    const res = await (dev as DevWorker).fetch('/calls/score', {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`api:${apiKey}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        project_id: project,
        call_ids: ['c1'],
        scorer_refs: [`weave:///${project}/object/Toxicity:9f2c`],
      }),
    })
    await res.arrayBuffer()
    return res.status
  }

  it('unlisted: 404; listed: the job carries the internal id; deleted: 404 again', async () => {
    putKeyRecord(LOCAL, hashKey(apiKey), { wb_user_id: 'VXNlcjox', projects: ['e2e/*'] })
    assert.equal(await score('e2e/bot'), 404)
    assert.equal(projects('put', 'e2e/bot', 'RTJFSW50ZXJuYWw').status, 0)
    assert.equal(await score('e2e/bot'), 200)
    const [message, ...rest] = sink?.messages('weave.score_calls') ?? []
    assert.equal(rest.length, 0)
    assert.equal(message?.key, 'RTJFSW50ZXJuYWw')
    assert.equal(
      message?.value,
      '{"project_id":"RTJFSW50ZXJuYWw","call_ids":["c1"],"scorer_refs":["weave-trace-internal:///RTJFSW50ZXJuYWw/object/Toxicity:9f2c"],"wb_user_id":"VXNlcjox"}',
    )
    assert.equal(projects('delete', 'e2e/bot').status, 0)
    assert.equal(await score('e2e/bot'), 404)
  })
})
