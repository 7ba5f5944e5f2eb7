package natsexec

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultListen is where an embedded server listens unless told otherwise:
// loopback only.
const DefaultListen = "127.0.0.1:4222"

// Embedded starts a NATS server with JetStream in this process, keeping its store
// in dir and listening on listen (host:port; "" means DefaultListen). It returns
// the server and the URL to reach it; Shutdown stops it.
func Embedded(dir, listen string) (*server.Server, string, error) {
	if listen == "" {
		listen = DefaultListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, "", fmt.Errorf("--nats-listen %q: expected host:port, such as 127.0.0.1:4222", listen)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, "", fmt.Errorf("--nats-listen %q: expected host:port, such as 127.0.0.1:4222", listen)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	} else if l, err := net.Listen("tcp", listen); err != nil {
		return nil, "", fmt.Errorf("the embedded NATS server cannot listen on %s (%v): give another address with --nats-listen, or 127.0.0.1:0 for any free port", listen, err)
	} else {
		l.Close()
	}
	opts := &server.Options{Host: host, Port: p, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
		MaxPayload: 8 << 20, ServerName: "flowrun"}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("the embedded NATS server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, "", fmt.Errorf("the embedded NATS server did not start on %s (is the port in use? give another with --nats-listen, or 127.0.0.1:0 for any)", listen)
	}
	return s, s.ClientURL(), nil
}
