package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// pgConn is a minimal PostgreSQL client (frontend/backend protocol 3.0, trust
// authentication, simple queries returning one text value) that keeps one connection open.
// The poller asks each node pg_is_in_recovery() every 100 ms through it: a query on an
// open connection costs the server next to nothing, where Patroni's REST API would run a
// SQL query and a Python thread per request, slowing the very API the check asks.
// Protocol: https://www.postgresql.org/docs/15/protocol-message-formats.html
type pgConn struct {
	addr string
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	conn net.Conn
	r    *bufio.Reader
}

// query runs sql and returns the first column of its first row, reconnecting if needed.
// Any error closes the connection; the next call opens a new one.
func (p *pgConn) query(ctx context.Context, sql string) (string, error) {
	if p.conn == nil {
		if err := p.connect(ctx); err != nil {
			return "", err
		}
	}
	v, err := p.simpleQuery(ctx, sql)
	if err != nil {
		p.close()
	}
	return v, err
}

func (p *pgConn) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn, p.r = nil, nil
	}
}

func (p *pgConn) connect(ctx context.Context) error {
	c, err := p.dial(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	p.conn, p.r = c, bufio.NewReader(c)
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var body []byte
	body = binary.BigEndian.AppendUint32(body, 3<<16) // protocol 3.0
	for _, kv := range []string{"user", "postgres", "database", "postgres", "application_name", "pvc-e2e-poller"} {
		body = append(append(body, kv...), 0)
	}
	body = append(body, 0)
	msg := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	if _, err := c.Write(append(msg, body...)); err != nil {
		p.close()
		return err
	}
	for {
		typ, data, err := p.read()
		if err != nil {
			p.close()
			return err
		}
		switch typ {
		case 'R':
			if len(data) < 4 || binary.BigEndian.Uint32(data) != 0 {
				p.close()
				return errors.New("postgres asks for a password; the lab's pg_hba trusts its subnet")
			}
		case 'E':
			p.close()
			return fmt.Errorf("postgres: %s", errorText(data))
		case 'Z':
			return nil
		}
	}
}

func (p *pgConn) simpleQuery(ctx context.Context, sql string) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		p.conn.SetDeadline(dl)
	}
	msg := binary.BigEndian.AppendUint32([]byte{'Q'}, uint32(4+len(sql)+1))
	msg = append(append(msg, sql...), 0)
	if _, err := p.conn.Write(msg); err != nil {
		return "", err
	}
	var value string
	var got bool
	var qerr error
	for {
		typ, data, err := p.read()
		if err != nil {
			return "", err
		}
		switch typ {
		case 'D': // DataRow: int16 count, then per column int32 length (-1 NULL) and bytes
			if !got && len(data) >= 6 {
				n := int32(binary.BigEndian.Uint32(data[2:6]))
				if n >= 0 && int(n) <= len(data)-6 {
					value, got = string(data[6:6+n]), true
				}
			}
		case 'E':
			qerr = fmt.Errorf("postgres: %s", errorText(data))
		case 'Z':
			if qerr != nil {
				return "", qerr
			}
			if !got {
				return "", errors.New("postgres: no row")
			}
			return value, nil
		}
	}
}

// read returns one backend message: its type byte and body.
func (p *pgConn) read() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > 1<<20 {
		return 0, nil, fmt.Errorf("postgres: bad message length %d", n)
	}
	data := make([]byte, n-4)
	if _, err := io.ReadFull(p.r, data); err != nil {
		return 0, nil, err
	}
	return hdr[0], data, nil
}

// errorText picks the message field ('M') of an ErrorResponse.
func errorText(data []byte) string {
	for len(data) > 1 {
		code := data[0]
		end := 1
		for end < len(data) && data[end] != 0 {
			end++
		}
		if code == 'M' {
			return string(data[1:end])
		}
		data = data[end+1:]
	}
	return "error"
}

// RolePrimary is the timeline's word for a PostgreSQL out of recovery, whichever word the
// stack's Patroni uses (Stack.PrimaryRole).
const RolePrimary = "primary"

// role asks whether the server is a replica ("replica") or a primary (RolePrimary), ""
// if it cannot tell.
func (p *pgConn) role(ctx context.Context) string {
	v, err := p.query(ctx, "select pg_is_in_recovery()")
	switch {
	case err != nil:
		return ""
	case v == "t":
		return "replica"
	case v == "f":
		return RolePrimary
	}
	return ""
}

// writeProbe reports whether n's PostgreSQL accepts a write now: a fresh connection,
// opened inside the node to its own address (so that it works on a node cut off from
// the switch, and so that a postmaster that no longer accepts connections counts), runs
// pg_current_xact_id(), which assigns a transaction ID and commits it: a write to the
// WAL, flushed before the answer (synchronous_commit is on). A server that is stopping,
// starting or gone refuses the connection; one in recovery answers NULL, without
// trying (an error there would put a line in PostgreSQL's log ten times a second). An
// open connection would not do: a frozen or stopping postmaster keeps serving the
// sessions it has.
func writeProbe(ctx context.Context, n *Node) bool {
	ctx, cancel := context.WithTimeout(ctx, writeProbeTimeout)
	defer cancel()
	pg := &pgConn{addr: n.Addr + ":5432", dial: dialIn(n.NS)}
	defer pg.close()
	xid, err := pg.query(ctx, "select case when pg_is_in_recovery() then null else pg_current_xact_id() end")
	return err == nil && xid != ""
}

// writeProbeTimeout bounds one write probe; past hangAfter it already counts as "does
// not accept writes".
const writeProbeTimeout = 3 * time.Second
