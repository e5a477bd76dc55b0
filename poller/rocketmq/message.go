package rocketmq

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/ferrydev/ferry/poller"
)

// retryTopicPrefix starts the name of a group's retry topic, %RETRY%<group>.
const retryTopicPrefix = "%RETRY%"

// systemProperties are RocketMQ's own message properties (the Go client's
// and the Java broker's); every other property is a user property and
// becomes a header.
var systemProperties = map[string]bool{}

func init() {
	for _, p := range []string{
		primitive.PropertyKeys, primitive.PropertyTags, primitive.PropertyWaitStoreMsgOk,
		primitive.PropertyDelayTimeLevel, primitive.PropertyRetryTopic, primitive.PropertyRealTopic,
		primitive.PropertyRealQueueId, primitive.PropertyTransactionPrepared, primitive.PropertyProducerGroup,
		primitive.PropertyMinOffset, primitive.PropertyMaxOffset, primitive.PropertyBuyerId,
		primitive.PropertyOriginMessageId, primitive.PropertyTransferFlag, primitive.PropertyCorrectionFlag,
		primitive.PropertyMQ2Flag, primitive.PropertyReconsumeTime, primitive.PropertyMsgRegion,
		primitive.PropertyTraceSwitch, primitive.PropertyUniqueClientMessageIdKeyIndex,
		primitive.PropertyMaxReconsumeTimes, primitive.PropertyConsumeStartTime,
		primitive.PropertyTranscationPreparedQueueOffset, primitive.PropertyTranscationCheckTimes,
		primitive.PropertyCheckImmunityTimeInSeconds, primitive.PropertyShardingKey,
		primitive.PropertyTransactionID, primitive.PropertyCorrelationID,
		primitive.PropertyMessageReplyToClient, primitive.PropertyMessageTTL,
		primitive.PropertyReplyMessageArriveTime, primitive.PropertyMsgType, primitive.PropertyCluster,
		// Java-only system properties.
		"INSTANCE_ID", "__STARTDELIVERTIME", "UNIQ_KEY", "bname", "__BORNHOST",
	} {
		systemProperties[p] = true
	}
}

// scopeOf is the ordering scope of a message queue,
// "rocketmq:<topic>/<broker>/<queueId>".
func scopeOf(mq primitive.MessageQueue) string {
	return fmt.Sprintf("rocketmq:%s/%s/%d", mq.Topic, mq.BrokerName, mq.QueueId)
}

// messageID is the message's Ferry id, stable across redeliveries:
// "rocketmq:<topic>/<broker>/<queueId>/<queueOffset>" for a message read
// from its topic (every redelivery the adapter causes reads it there again,
// at the same offset).
//
// A message the group's %RETRY% topic redelivers (sent back by another
// client of the group; this adapter never sends back) has lost its original
// queue and offset: the broker keeps only the original's offset message id
// in ORIGIN_MESSAGE_ID, which stays the same across further retries. Its
// id is "rocketmq:<topic>/retry/<ORIGIN_MESSAGE_ID>".
func messageID(mq primitive.MessageQueue, m *primitive.MessageExt) string {
	if strings.HasPrefix(mq.Topic, retryTopicPrefix) {
		origin := m.GetProperty(primitive.PropertyOriginMessageId)
		if origin == "" {
			origin = m.MsgId
		}
		return fmt.Sprintf("rocketmq:%s/retry/%s", m.Topic, origin)
	}
	return fmt.Sprintf("rocketmq:%s/%s/%d/%d", mq.Topic, mq.BrokerName, mq.QueueId, m.QueueOffset)
}

// toMessage converts a client message; Ack is set by the caller.
func toMessage(source string, mq primitive.MessageQueue, m *primitive.MessageExt) *poller.Message {
	props := m.GetProperties()
	headers := make(map[string]string, len(props))
	for k, v := range props {
		if !systemProperties[k] {
			headers[k] = v
		}
	}
	key := m.GetKeys()
	if key == "" {
		key = m.GetShardingKey()
	}
	t := time.Now()
	if m.BornTimestamp > 0 {
		t = time.UnixMilli(m.BornTimestamp)
	}
	return &poller.Message{
		ID:      messageID(mq, m),
		Scope:   scopeOf(mq),
		Key:     key,
		Source:  source,
		Payload: m.Body,
		Headers: headers,
		Time:    t,
	}
}
