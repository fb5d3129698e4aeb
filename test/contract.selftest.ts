/**
 * The contract is required: `loadContract` (the tests' global setup) must fail the run when
 * spec/calls-score.openapi.yaml is missing, unparsable or not the operation's document, instead
 * of letting the OpenAPI tests compare against nothing. Run with `node --test`.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { loadContract, PYTHON_OPENAPI } from './global-setup.ts'

const dir = mkdtempSync(join(tmpdir(), 'contract-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const file = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

describe('loadContract', () => {
  it('reads the repository’s own contract: POST /calls/score and its schemas', () => {
    assert.match(PYTHON_OPENAPI, /[/\\]spec[/\\]calls-score\.openapi\.yaml$/)
    const doc = loadContract() as {
      paths: Record<string, Record<string, { operationId?: string }>>
      components: { schemas: Record<string, unknown> }
    }
    assert.equal(doc.paths['/calls/score']?.post?.operationId, 'calls_score_calls_score_post')
    assert.deepEqual(Object.keys(doc.components.schemas).sort(), [
      'CallsScoreReq',
      'CallsScoreRes',
      'HTTPValidationError',
      'ValidationError',
    ])
  })

  it('fails on a missing file', () => {
    assert.throws(() => loadContract(join(dir, 'absent.yaml')), /cannot be read: ENOENT/)
  })

  it('fails on a file that is not YAML', () => {
    const path = file('broken.yaml', 'paths:\n  /calls/score: [unclosed\n')
    assert.throws(() => loadContract(path), /is not valid YAML/)
  })

  it('fails on a document without the operation or the schemas', () => {
    for (const [name, text] of [
      ['empty.yaml', ''],
      ['other-path.yaml', 'paths:\n  /health:\n    get: {}\ncomponents:\n  schemas: {}\n'],
      ['no-schemas.yaml', 'paths:\n  /calls/score:\n    post: {}\n'],
    ] as const) {
      assert.throws(() => loadContract(file(name, text)), /does not describe POST \/calls\/score/)
    }
  })
})
