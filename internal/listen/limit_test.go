package listen

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestLimiterShedsTheLongestIdleConnection: at the cap, a new connection
// is served and the connection idle longest is closed for it; the open
// connections never exceed the cap.
func TestLimiterShedsTheLongestIdleConnection(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 3
	l := Limit(ln, limit)
	srv := &http.Server{ConnState: l.ConnState, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	// request sends one keep-alive request on c and reads the answer.
	request := func(c net.Conn) error {
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	var conns []net.Conn
	for i := range 10 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if err := request(c); err != nil {
			t.Fatalf("connection %d not served: %v", i, err)
		}
		if n := l.Open(); n > limit {
			t.Fatalf("%d connections open, cap %d", n, limit)
		}
		conns = append(conns, c)
	}
	if l.Shed() < 10-limit {
		t.Fatalf("%d connections shed, want at least %d", l.Shed(), 10-limit)
	}
	// The first connection was idle longest: the server closed it.
	_ = conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("the longest-idle connection is still open")
	}
	if err := request(conns[len(conns)-1]); err != nil {
		t.Fatalf("the newest connection: %v", err)
	}
}
