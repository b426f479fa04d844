package sse

import "strconv"

// A taken-over stream is the body of an HTTP/1.1 response in chunked
// transfer coding (RFC 9112, section 7.1), written to the connection
// directly after net/http wrote the head and the first chunks: every write
// must then be whole chunks, or the client's framing breaks.

// ChunkEnd ends the data of every chunk.
const ChunkEnd = "\r\n"

// LastChunk ends a chunked body cleanly, so that a client sees the stream
// end rather than a broken connection.
const LastChunk = "0\r\n\r\n"

// KeepaliveChunk is Keepalive as one chunk.
const KeepaliveChunk = "d\r\n" + Keepalive + ChunkEnd

// ResetChunk is ResetFrame as one chunk.
const ResetChunk = "5\r\n" + ResetFrame + ChunkEnd

// AppendChunkHeader appends the line that opens a chunk of size bytes: a
// chunk of several frames is that line, the frames, then ChunkEnd, which a
// writer can hand to writev without copying the frames.
func AppendChunkHeader(dst []byte, size int) []byte {
	dst = strconv.AppendInt(dst, int64(size), 16)
	return append(dst, '\r', '\n')
}

// AppendChunk appends data as one chunk. Empty data would be the last
// chunk, so it appends nothing.
func AppendChunk(dst, data []byte) []byte {
	if len(data) == 0 {
		return dst
	}
	dst = AppendChunkHeader(dst, len(data))
	dst = append(dst, data...)
	return append(dst, ChunkEnd...)
}
