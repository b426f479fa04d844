// Follows a factstream service and prints every fact as one JSON line, once
// and in order, across disconnects and server restarts.
//
//   node subscribe.mjs [BASE_URL]   (default: $FACTSTREAM_URL, else http://localhost:3000)
//
// FACTSTREAM_TOKEN, when set, is sent as a bearer token.
import { EventSource } from 'eventsource'

const base = process.argv[2] || process.env.FACTSTREAM_URL || 'http://localhost:3000'
const token = process.env.FACTSTREAM_TOKEN

// docs snippet: subscribe
let lastEventId = ''

function subscribe() {
  const url = new URL('/events', base)
  // An open EventSource resumes by itself, sending Last-Event-ID when it
  // reconnects; a new one starts after the last fact seen.
  if (lastEventId) url.searchParams.set('lastEventId', lastEventId)
  const events = new EventSource(url, {
    fetch: (input, init) =>
      fetch(input, { ...init, headers: { ...init.headers, ...(token && { Authorization: `Bearer ${token}` }) } }),
  })
  events.onmessage = (event) => {
    // The first events hold arrays of facts, every later one a single
    // fact: concatenating what arrives shows each fact once.
    for (const fact of [].concat(JSON.parse(event.data))) {
      console.log(JSON.stringify(fact))
    }
    if (event.lastEventId) lastEventId = event.lastEventId
  }
  events.addEventListener('truncated', (event) => console.error('older facts are gone:', event.data))
  events.addEventListener('deleted', (event) => console.error('deleted:', event.data))
  events.onerror = (err) => {
    if (events.readyState !== EventSource.CLOSED) return // reconnecting by itself
    if (err.code >= 400 && err.code < 500 && err.code !== 429) {
      console.error(`subscribe: ${err.message}`)
      process.exit(1)
    }
    // A refused reconnection (a 503 while the server restarts) ends an
    // EventSource for good: open a new one after a pause.
    setTimeout(subscribe, 1000)
  }
}
// docs snippet end

subscribe()
