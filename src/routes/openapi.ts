import { swaggerUI } from '@hono/swagger-ui'
import type { Hono } from 'hono'
import { type Config, loadConfig } from '../config.ts'
import type { AppEnv } from '../env.ts'
import { methodNotAllowed } from '../errors.ts'
import { openApiDocument } from '../openapi/document.ts'

/** Swagger UI's assets, pinned, with the Subresource Integrity of that version's npm files. */
const SWAGGER_UI_VERSION = '5.35.0'
const INTEGRITY: Readonly<Record<string, string>> = {
  'swagger-ui.css': 'sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I',
  'swagger-ui-bundle.js': 'sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9',
}

const DOCUMENT_PATH = '/openapi.json'

const integrityOf = (url: string) => INTEGRITY[url.slice(url.lastIndexOf('/') + 1)] ?? ''

// The browser fetches Swagger UI from the CDN when the page is viewed, so none of it is in the
// Worker's bundle; integrity pins the exact bytes, so a compromised CDN cannot run script here.
const docsPage = swaggerUI({
  url: DOCUMENT_PATH,
  title: 'Weave calls/score edge: API reference',
  version: SWAGGER_UI_VERSION,
  manuallySwaggerUIHtml: (asset) => `
    <div id="swagger-ui"></div>
    ${asset.css.map((href) => `<link rel="stylesheet" href="${href}" integrity="${integrityOf(href)}" crossorigin="anonymous" />`).join('\n')}
    ${asset.js.map((src) => `<script src="${src}" integrity="${integrityOf(src)}" crossorigin="anonymous"></script>`).join('\n')}
    <script>
      window.onload = () => {
        window.ui = SwaggerUIBundle({ dom_id: '#swagger-ui', url: '${DOCUMENT_PATH}' })
      }
    </script>`,
})

const rendered = new WeakMap<Config, string>()
let renderedWithoutLimits: string | undefined

/** The document for this deployment, rendered once per configuration. */
function documentFor(env: Env): string {
  const result = loadConfig(env)
  if (!result.ok) {
    renderedWithoutLimits ??= JSON.stringify(openApiDocument(undefined))
    return renderedWithoutLimits
  }
  let text = rendered.get(result.config)
  if (text === undefined) {
    text = JSON.stringify(openApiDocument(result.config))
    rendered.set(result.config, text)
  }
  return text
}

/**
 * `GET /openapi.json` (the OpenAPI 3.1 document, generated from the zod schemas that validate
 * requests) and `GET /docs` (Swagger UI over it). Both are public, like FastAPI's, and work on
 * a misconfigured deployment too: the document then leaves the limits out.
 */
export function registerOpenApi(app: Hono<AppEnv>): void {
  app.get(
    DOCUMENT_PATH,
    (c) => new Response(documentFor(c.env), { headers: { 'content-type': 'application/json' } }),
  )
  app.get('/docs', docsPage)
  app.all(DOCUMENT_PATH, methodNotAllowed('GET'))
  app.all('/docs', methodNotAllowed('GET'))
}
