package natsexec

import (
	"bytes"
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// payloadHeader names the object that holds a message's payload, when it was too
// large to travel in the message.
const payloadHeader = "Flowrun-Payload"

// message makes a message of data for subject: the data itself, or, past inline
// (or the server's max_payload), a reference to the object name in the payload
// store.
func (c *Conn) message(ctx context.Context, subject, name string, data []byte) (*nats.Msg, error) {
	msg := nats.NewMsg(subject)
	limit := max(min(int64(inline), c.NC.MaxPayload()-4096), 512) // room for the headers
	if int64(len(data)) <= limit {
		msg.Data = data
		return msg, nil
	}
	// Chunks that fit the server's max_payload, whatever it is.
	meta := jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: uint32(min(int64(128<<10), limit))}}
	if _, err := c.payloads.Put(ctx, meta, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("storing a payload of %d KiB: %w", len(data)>>10, err)
	}
	msg.Header.Set(payloadHeader, name)
	return msg, nil
}

// payload is a message's data, from the payload store when it holds a reference.
func (c *Conn) payload(ctx context.Context, h nats.Header, data []byte) ([]byte, error) {
	name := h.Get(payloadHeader)
	if name == "" {
		return data, nil
	}
	b, err := c.payloads.GetBytes(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reading the payload %s: %w", name, err)
	}
	return b, nil
}

// dropPayload deletes a payload that is no longer needed, if there is one.
func (c *Conn) dropPayload(ctx context.Context, h nats.Header) {
	if name := h.Get(payloadHeader); name != "" {
		c.payloads.Delete(ctx, name)
	}
}
