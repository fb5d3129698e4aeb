/**
 * Certificates for the local broker's TLS listeners, made per run with `openssl`: a CA, a broker
 * certificate it signs for 127.0.0.1 and localhost, one it signs for another name only (a wrong
 * host name), and one signed by a second CA nobody trusts. Keys are P-256; the broker reads
 * PKCS#12 keystores, clients trust the CA's PEM file.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** A CA: its certificate (PEM, what clients trust) and its key (PEM, to sign with). */
export type TestCa = { certFile: string; keyFile: string }

/** The keystores a TLS broker needs, all with {@link KEYSTORE_PASSWORD}. */
export type BrokerKeystores = {
  /** Signed by the run's CA for IP 127.0.0.1 and DNS localhost. */
  good: string
  /** Signed by the run's CA for `wrong-name.invalid` only. */
  wrongName: string
  /** Signed by a CA made for this purpose and never trusted, for IP 127.0.0.1. */
  untrusted: string
  ca: TestCa
}

export const KEYSTORE_PASSWORD = 'weave-keystore'

function openssl(args: string[], what: string): void {
  const run = spawnSync('openssl', args, { encoding: 'utf8' })
  if (run.error) throw new Error('`openssl` was not found: the TLS listeners need it')
  if (run.status !== 0) throw new Error(`openssl ${what} failed: ${run.stderr.trim()}`)
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

/** A new CA in `dir` (ca.pem, ca.key), valid for two days. */
export function createCa(dir: string, name = 'weave local Kafka test CA'): TestCa {
  mkdirSync(dir, { recursive: true })
  const ca = { certFile: join(dir, 'ca.pem'), keyFile: join(dir, 'ca.key') }
  openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      ca.keyFile,
      '-out',
      ca.certFile,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    'making a CA',
  )
  return ca
}

/** A server certificate for `altNames` signed by `ca`, as a PKCS#12 keystore at `out`. */
function serverKeystore(dir: string, label: string, ca: TestCa, altNames: string): string {
  const key = join(dir, `${label}.key`)
  const csr = join(dir, `${label}.csr`)
  const cert = join(dir, `${label}.pem`)
  const ext = join(dir, `${label}.ext`)
  const out = join(dir, `${label}.p12`)
  writeFileSync(
    ext,
    `subjectAltName=${altNames}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n`,
  )
  openssl(['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${label}`], 'making a CSR')
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    'signing a certificate',
  )
  openssl(
    [
      'pkcs12',
      '-export',
      '-in',
      cert,
      '-inkey',
      key,
      '-certfile',
      ca.certFile,
      '-name',
      'broker',
      '-out',
      out,
      '-passout',
      `pass:${KEYSTORE_PASSWORD}`,
    ],
    'writing a keystore',
  )
  return out
}

/**
 * The broker's keystores in `dir`, signed by `ca` (made there when not given: a CA the caller
 * made earlier lets a client trust it before the broker exists).
 */
export function brokerKeystores(dir: string, ca?: TestCa): BrokerKeystores {
  mkdirSync(dir, { recursive: true })
  const trusted = ca && existsSync(ca.certFile) ? ca : createCa(join(dir, 'ca'))
  const rogue = createCa(join(dir, 'rogue-ca'), 'weave untrusted test CA')
  return {
    ca: trusted,
    good: serverKeystore(dir, 'broker', trusted, 'IP:127.0.0.1,DNS:localhost'),
    wrongName: serverKeystore(dir, 'wrong-name', trusted, 'DNS:wrong-name.invalid'),
    untrusted: serverKeystore(dir, 'untrusted', rogue, 'IP:127.0.0.1,DNS:localhost'),
  }
}
