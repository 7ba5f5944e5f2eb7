package natsexec

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultListen is where an embedded server listens unless told otherwise:
// loopback only.
const DefaultListen = "127.0.0.1:4222"

// Embedded starts a NATS server with JetStream in this process, keeping its store
// in dir and listening on listen (host:port; "" means DefaultListen). With a
// token, clients must give it (nats://TOKEN@host:port): anyone who could connect
// could otherwise send calls to the workers. It returns the server and the URL to
// reach it, with the token; Shutdown stops it.
func Embedded(dir, listen, token string) (*server.Server, string, error) {
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
		MaxPayload: 8 << 20, ServerName: "flowrun", Authorization: token}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("the embedded NATS server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, "", fmt.Errorf("the embedded NATS server did not start on %s (is the port in use? give another with --nats-listen, or 127.0.0.1:0 for any)", listen)
	}
	url := s.ClientURL()
	if token != "" {
		url = "nats://" + token + "@" + strings.TrimPrefix(url, "nats://")
	}
	return s, url, nil
}

// Token is the token of the embedded server whose store is dir: made at random
// the first time and kept in dir/token (readable by its owner only), so that the
// workers of a run keep working when its coordinator resumes.
func Token(dir string) (string, error) {
	path := filepath.Join(dir, "token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("the embedded NATS server's token: %w", err)
	}
	token := rand.Text()
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("the embedded NATS server's token: %w", err)
	}
	return token, nil
}
