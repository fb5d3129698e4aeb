import { createApp } from './app.ts'

const app = createApp()

/** The Worker: `satisfies` keeps `fetch` callable with its precise type from tests. */
export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>
