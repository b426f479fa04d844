// Publishes each line of standard input as a fact, each stored exactly once
// even when connections fail, and prints every stored fact as one JSON line.
//
//   echo "Octopuses have three hearts." | node publish.mjs [BASE_URL]
//
// BASE_URL defaults to $FACTSTREAM_URL, else http://localhost:3000;
// FACTSTREAM_TOKEN, when set, is sent as a bearer token.
import { randomUUID } from 'node:crypto'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'

const base = process.argv[2] || process.env.FACTSTREAM_URL || 'http://localhost:3000'
const token = process.env.FACTSTREAM_TOKEN

// docs snippet: publish
class Refused extends Error {}

async function publish(info, attempts = 10) {
  // One key for every attempt: retrying a request whose answer was lost
  // gets the stored fact back instead of storing it twice.
  const key = randomUUID()
  for (let attempt = 1; ; attempt++) {
    let delay = Math.min(200 * 2 ** attempt, 5000)
    let reason
    try {
      const res = await fetch(new URL('/fact', base), {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Idempotency-Key': key,
          ...(token && { Authorization: `Bearer ${token}` }),
        },
        body: JSON.stringify({ info }),
        signal: AbortSignal.timeout(10_000),
      })
      const body = await res.json()
      if (res.status === 201) return body
      reason = `${res.status} ${body.detail}`
      // Only these are worth another try; any other answer means the
      // request itself is wrong.
      if (![409, 429, 503].includes(res.status)) throw new Refused(reason)
      delay = 1000 * Number(res.headers.get('Retry-After')) || delay
    } catch (err) {
      if (err instanceof Refused) throw err
      reason ??= err.cause?.message || err.message // the connection failed
    }
    if (attempt === attempts) throw new Error(`gave up after ${attempts} attempts: ${reason}`)
    console.error(`retrying in ${delay} ms: ${reason}`)
    await sleep(delay)
  }
}
// docs snippet end

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue
  try {
    console.log(JSON.stringify(await publish(line)))
  } catch (err) {
    console.error(`publish: ${err.message}`)
    process.exit(1)
  }
}
