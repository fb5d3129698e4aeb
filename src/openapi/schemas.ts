import * as z from 'zod'

/**
 * FastAPI's `ValidationError` as its OpenAPI document describes it (`loc`, `msg`, `type`). The
 * 422 bodies carry pydantic's `input` and `ctx` as well; FastAPI leaves them out of the schema,
 * and so do we, so that the document stays the Python server's.
 */
export const ValidationErrorSchema = z
  .object({
    loc: z.array(z.union([z.string(), z.number().int()])).meta({ title: 'Location' }),
    msg: z.string().meta({ title: 'Message' }),
    type: z.string().meta({ title: 'Error Type' }),
  })
  .meta({ title: 'ValidationError' })

/** FastAPI's `HTTPValidationError`: the body of every 422. */
export const HTTPValidationErrorSchema = z
  .object({ detail: z.array(ValidationErrorSchema).optional().meta({ title: 'Detail' }) })
  .meta({ title: 'HTTPValidationError' })

/** The body of every other failure: FastAPI's `HTTPException` rendering, `{"detail": "…"}`. */
export const HTTPErrorSchema = z.object({ detail: z.string().meta({ title: 'Detail' }) }).meta({
  title: 'HTTPError',
  description: "A failure other than validation, in FastAPI's HTTPException shape.",
})

/** `GET /health`'s body. */
export const HealthSchema = z
  .object({ status: z.literal('ok').meta({ title: 'Status' }) })
  .meta({ title: 'Health' })
