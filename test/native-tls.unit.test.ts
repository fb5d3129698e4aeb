import { describe, expect, it } from 'vitest'
import { tlsFailure } from '../src/kafka/native.ts'

// What a refused TLS connection says in the request log: the cause where the runtime names it
// (Node's tls, rustls's wording), "TLS" where it does not (workerd's connect()).
describe('TLS failures in the log', () => {
  it.each([
    [
      'unable to get local issuer certificate',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'TLS: unknown issuer',
    ],
    [
      'TLS handshake failed: invalid peer certificate: UnknownIssuer',
      undefined,
      'TLS: unknown issuer',
    ],
    [
      "Hostname/IP does not match certificate's altnames",
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'TLS: wrong host name',
    ],
    ['invalid peer certificate: NotValidForName', undefined, 'TLS: wrong host name'],
    [
      'proxy request failed, cannot connect to the specified address',
      undefined,
      'TLS: handshake failed',
    ],
  ])('%s', (message, code, said) => {
    expect(tlsFailure(message, code)).toMatch(new RegExp(`^${said}.*${message.slice(0, 20)}`))
  })

  it('a refused TCP connect is not a TLS failure', () => {
    expect(tlsFailure('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED')).toBeUndefined()
  })
})
