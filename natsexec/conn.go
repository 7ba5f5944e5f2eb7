package natsexec

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is a connection to a NATS server with JetStream, with flowrun's streams,
// buckets and object store in place. It is safe for concurrent use.
type Conn struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	tasks    jetstream.Stream
	results  jetstream.Stream
	workers  jetstream.KeyValue
	runs     jetstream.KeyValue
	payloads jetstream.ObjectStore
}

// Dial connects to the server at url as name (what `flowrun workers` and the
// server's monitoring show), with the credentials file creds when not empty, and
// makes the layout when it is missing. Every problem is one clear error: an
// unreachable server, one without JetStream, one older than 2.9.
func Dial(ctx context.Context, url, creds, name string) (*Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.Timeout(3 * time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond)}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, fmt.Errorf("the NATS server at %s refused the connection (authorization violation): give the URL with its credentials (nats://TOKEN@host:port, as `flowrun run --nats embedded` prints it, or nats://user:password@host:port), or --nats-creds FILE", redact(url))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach the NATS server at %s: %v; start one (nats-server -js), or run with --nats embedded", redact(url), err)
	}
	c, err := setup(ctx, nc, redact(url))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// redact hides the credentials of a URL, for messages.
func redact(u string) string {
	parsed, err := neturl.Parse(u)
	if err != nil || parsed.User == nil {
		return u
	}
	parsed.User = nil
	return strings.Replace(parsed.String(), "://", "://***@", 1)
}

// Close closes the connection, after sending what it holds.
func (c *Conn) Close() {
	c.NC.Drain()
}

func setup(ctx context.Context, nc *nats.Conn, url string) (*Conn, error) {
	if err := checkVersion(nc.ConnectedServerVersion()); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("the NATS server at %s has no JetStream: start it with -js (or a jetstream {} block in its configuration)", url)
		}
		return nil, fmt.Errorf("the NATS server at %s: %v", url, err)
	}
	c := &Conn{NC: nc, JS: js}
	if c.tasks, err = stream(ctx, js, jetstream.StreamConfig{
		Name: tasksStream, Subjects: []string{"flowrun.tasks.>"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	}); err != nil {
		return nil, err
	}
	if c.results, err = stream(ctx, js, jetstream.StreamConfig{
		Name: resultsStream, Subjects: []string{"flowrun.results.>"}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, MaxMsgsPerSubject: 1, Discard: jetstream.DiscardNew, DiscardNewPerSubject: true,
		MaxAge: 7 * 24 * time.Hour, Duplicates: 2 * time.Minute,
	}); err != nil {
		return nil, err
	}
	if c.workers, err = bucket(ctx, js, jetstream.KeyValueConfig{Bucket: workersBucket, TTL: workerTTL, Storage: jetstream.MemoryStorage}); err != nil {
		return nil, err
	}
	if c.runs, err = bucket(ctx, js, jetstream.KeyValueConfig{Bucket: runsBucket, TTL: leaseTTL, Storage: jetstream.FileStorage}); err != nil {
		return nil, err
	}
	c.payloads, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: payloadsBucket, TTL: 7 * 24 * time.Hour, Storage: jetstream.FileStorage})
	if errors.Is(err, jetstream.ErrBucketExists) {
		c.payloads, err = js.ObjectStore(ctx, payloadsBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("the NATS server: the object store %s: %w", payloadsBucket, err)
	}
	return c, nil
}

// stream makes a stream, or takes it as it is when it exists.
func stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("the NATS server: the stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// bucket makes a key-value bucket, or takes it as it is when it exists.
func bucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("the NATS server: the bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// poolConsumer is the durable consumer of a pool's tasks, made (or updated) with
// the given ack wait.
func (c *Conn) poolConsumer(ctx context.Context, pool string, ackWait time.Duration) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable: consumerName(pool), FilterSubject: "flowrun.tasks." + token(pool) + ".>",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxDeliver: MaxDeliveries, MaxAckPending: 1 << 16,
	}
	cons, err := c.JS.CreateOrUpdateConsumer(ctx, tasksStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("the NATS server: the consumer of pool %s: %w", pool, err)
	}
	return cons, nil
}
