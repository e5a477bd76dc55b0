package config

// WebhookSink POSTs outcomes signed per Standard Webhooks.
type WebhookSink struct {
	URL string `yaml:"url"`
	// Secret is "whsec_" followed by base64 of the signing key.
	Secret string `yaml:"secret"`
	// Timeout bounds one delivery attempt. Defaults to 10s.
	Timeout Duration `yaml:"timeout"`
	// Retry bounds redelivery. Defaults: 10 attempts, 1s initial, 5m max
	// interval, multiplier 2, max age 24h.
	Retry Retry `yaml:"retry"`
}

func (w *WebhookSink) delivery() (*Duration, *Retry) { return &w.Timeout, &w.Retry }
func (*WebhookSink) applyDefaults()                  {}

func (w *WebhookSink) validate(v *validator, p string) {
	v.httpURL(p+".url", w.URL)
	if err := checkSecret(w.Secret); err != nil {
		v.report(p+".secret", nil, "%v", err)
	}
}

// LogSink writes outcomes to Ferry's log.
type LogSink struct{}

func (*LogSink) delivery() (*Duration, *Retry) { return nil, nil }
func (*LogSink) applyDefaults()                {}
func (*LogSink) validate(*validator, string)   {}
