package rabbitmq

import "time"

// SetAckPatience sets how long src's acks wait behind an unsettled
// delivery before they are sent one by one; call it before Connect.
func SetAckPatience(src *Source, d time.Duration) { src.cfg.ackPatience = d }
