package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
)

// rawNATS speaks the NATS text protocol over a plain TCP socket: a client
// that shares no code with cutover (no nats.go, no codec), standing in for
// the official nats CLI, which this machine cannot install.
type rawNATS struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	msgs chan string
	pong chan struct{}
}

func dialRaw(t *testing.T, url string) *rawNATS {
	t.Helper()
	return dialRawAs(t, url, "")
}

// dialRawAs is dialRaw authenticating with the nkey seed in seedFile (none
// when empty), as the protocol asks: the CONNECT carries the public key and
// the server's nonce signed with the seed.
func dialRawAs(t *testing.T, url, seedFile string) *rawNATS {
	t.Helper()
	addr := strings.TrimPrefix(url, "nats://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawNATS{t: t, conn: conn, r: bufio.NewReader(conn), msgs: make(chan string, 1024), pong: make(chan struct{}, 16)}
	info, err := c.r.ReadString('\n') // INFO {...}
	if err != nil {
		t.Fatal(err)
	}
	connect := map[string]any{"verbose": false, "pedantic": false, "headers": false, "name": "raw-test-client"}
	if seedFile != "" {
		var server struct {
			Nonce string `json:"nonce"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(info), "INFO ")), &server); err != nil {
			t.Fatalf("read the server's INFO: %v", err)
		}
		seed, err := os.ReadFile(seedFile)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
		if err != nil {
			t.Fatalf("seed %s: %v", seedFile, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		sig, err := kp.Sign([]byte(server.Nonce))
		if err != nil {
			t.Fatal(err)
		}
		connect["nkey"], connect["sig"] = pub, base64.RawURLEncoding.EncodeToString(sig)
	}
	line, err := json.Marshal(connect)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "CONNECT %s\r\n", line)
	go c.read()
	t.Cleanup(func() { conn.Close() })
	return c
}

// read delivers MSG payloads and answers PINGs until the connection closes.
func (c *rawNATS) read() {
	defer close(c.msgs)
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "PONG":
			c.pong <- struct{}{}
		case line == "PING":
			fmt.Fprintf(c.conn, "PONG\r\n")
		case strings.HasPrefix(line, "MSG "):
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[len(f)-1])
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(c.r, buf); err != nil {
				return
			}
			c.msgs <- string(buf[:n])
		}
	}
}

func (c *rawNATS) pub(subject, payload string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, "PUB %s %d\r\n%s\r\n", subject, len(payload), payload); err != nil {
		c.t.Fatal(err)
	}
}

// sub subscribes and returns once the server has processed the SUB (the
// PONG to the PING sent after it).
func (c *rawNATS) sub(subject string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, "SUB %s 1\r\nPING\r\n", subject); err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-c.pong:
	case <-time.After(10 * time.Second):
		c.t.Fatal("no PONG after SUB")
	}
}
