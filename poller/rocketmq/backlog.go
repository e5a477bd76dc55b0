package rocketmq

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"
)

// The client library keeps the broker's offset queries internal, and its
// pull consumer, which exposes them, joins the group (a heartbeat that makes
// the group's push consumers rebalance). Backlog therefore speaks the few
// requests it needs of RocketMQ's remoting protocol itself: one TCP
// connection per request, JSON-serialised headers.

// Remoting request and response codes (RocketMQ 4.x RequestCode/ResponseCode).
const (
	reqQueryConsumerOffset = 14
	reqGetMinOffset        = 29
	reqGetMaxOffset        = 30
	reqGetRouteInfoByTopic = 105

	respSuccess       = 0
	respQueryNotFound = 22

	remotingTimeout = 3 * time.Second
	maxFrame        = 16 << 20
)

var opaque atomic.Int32

type remotingHeader struct {
	Code      int               `json:"code"`
	Language  string            `json:"language"`
	Version   int               `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int               `json:"flag"`
	Remark    string            `json:"remark,omitempty"`
	ExtFields map[string]string `json:"extFields,omitempty"`
}

// invoke sends one request to addr and returns the response header and body.
func invoke(ctx context.Context, addr string, code int, ext map[string]string) (*remotingHeader, []byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, remotingTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	h, err := json.Marshal(remotingHeader{Code: code, Language: "GO", Version: 317, Opaque: opaque.Add(1), ExtFields: ext})
	if err != nil {
		return nil, nil, err
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(4+len(h)))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(h))) // serialize type 0: JSON
	if _, err := conn.Write(append(frame, h...)); err != nil {
		return nil, nil, err
	}
	var lens [8]byte
	if _, err := io.ReadFull(conn, lens[:]); err != nil {
		return nil, nil, err
	}
	total := binary.BigEndian.Uint32(lens[:4])
	hl := binary.BigEndian.Uint32(lens[4:]) & 0xFFFFFF
	if total > maxFrame || hl+4 > total || lens[4] != 0 {
		return nil, nil, fmt.Errorf("unexpected remoting frame (length %d, header %d, type %d)", total, hl, lens[4])
	}
	rest := make([]byte, total-4)
	if _, err := io.ReadFull(conn, rest); err != nil {
		return nil, nil, err
	}
	var resp remotingHeader
	if err := json.Unmarshal(rest[:hl], &resp); err != nil {
		return nil, nil, fmt.Errorf("decoding the response header: %w", err)
	}
	return &resp, rest[hl:], nil
}

// queueOffset asks a broker for an offset of a queue (min, max, or the
// group's committed one); found is false when the group has none.
func queueOffset(ctx context.Context, broker string, code int, ext map[string]string) (off int64, found bool, err error) {
	resp, _, err := invoke(ctx, broker, code, ext)
	if err != nil {
		return 0, false, err
	}
	switch resp.Code {
	case respSuccess:
		off, err := strconv.ParseInt(resp.ExtFields["offset"], 10, 64)
		return off, err == nil, err
	case respQueryNotFound:
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("broker %s answered code %d: %s", broker, resp.Code, resp.Remark)
}

type topicRoute struct {
	QueueDatas []struct {
		BrokerName    string `json:"brokerName"`
		ReadQueueNums int    `json:"readQueueNums"`
	} `json:"queueDatas"`
	BrokerDatas []struct {
		BrokerName  string            `json:"brokerName"`
		BrokerAddrs map[string]string `json:"brokerAddrs"`
	} `json:"brokerDatas"`
}

// The name server writes brokerAddrs with bare integer keys ({0:"..."}).
var bareKey = regexp.MustCompile(`([{,])\s*(-?\d+)\s*:`)

func route(ctx context.Context, nameServers []string, topic string) (*topicRoute, error) {
	var errs []error
	for _, ns := range nameServers {
		resp, body, err := invoke(ctx, ns, reqGetRouteInfoByTopic, map[string]string{"topic": topic})
		if err == nil && resp.Code != respSuccess {
			err = fmt.Errorf("code %d: %s", resp.Code, resp.Remark)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("name server %s: %w", ns, err))
			continue
		}
		var r topicRoute
		if err := json.Unmarshal(bareKey.ReplaceAll(body, []byte(`$1"$2":`)), &r); err != nil {
			return nil, fmt.Errorf("decoding the route of %s: %w", topic, err)
		}
		return &r, nil
	}
	return nil, errors.Join(errs...)
}

// Backlog reads from the brokers how many messages of topic the consumer
// group has not committed yet: the sum over the topic's read queues of the
// queue's max offset minus the group's committed offset (the queue's min
// offset when the group has committed nothing there). Messages waiting in
// the group's %RETRY% topic are not counted. Committed offsets reach the
// broker with the consumer's pulls and its flush every 5 s, and on Close.
func Backlog(ctx context.Context, nameServers []string, topic, group string) (int64, error) {
	queues, err := QueueBacklog(ctx, nameServers, topic, group)
	var total int64
	for _, n := range queues {
		total += n
	}
	return total, err
}

// QueueBacklog is the consumer group's backlog per message queue of topic,
// keyed "broker/queueId": the queue's max offset less the group's
// committed offset (its min offset while the group has none there).
func QueueBacklog(ctx context.Context, nameServers []string, topic, group string) (map[string]int64, error) {
	r, err := route(ctx, nameServers, topic)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: backlog of %s for %s: %w", topic, group, err)
	}
	addrs := map[string]string{}
	for _, b := range r.BrokerDatas {
		addrs[b.BrokerName] = b.BrokerAddrs["0"] // the master
	}
	out := map[string]int64{}
	for _, q := range r.QueueDatas {
		broker := addrs[q.BrokerName]
		if broker == "" {
			return nil, fmt.Errorf("rocketmq: backlog of %s: no master address for broker %s", topic, q.BrokerName)
		}
		for id := range q.ReadQueueNums {
			ext := map[string]string{"topic": topic, "queueId": strconv.Itoa(id)}
			maxOff, _, err := queueOffset(ctx, broker, reqGetMaxOffset, ext)
			if err != nil {
				return nil, fmt.Errorf("rocketmq: max offset of %s/%d: %w", topic, id, err)
			}
			ext["consumerGroup"] = group
			committed, found, err := queueOffset(ctx, broker, reqQueryConsumerOffset, ext)
			if err == nil && !found {
				committed, _, err = queueOffset(ctx, broker, reqGetMinOffset, ext)
			}
			if err != nil {
				return nil, fmt.Errorf("rocketmq: offset of %s/%d for %s: %w", topic, id, group, err)
			}
			out[q.BrokerName+"/"+strconv.Itoa(id)] = max(0, maxOff-committed)
		}
	}
	return out, nil
}
