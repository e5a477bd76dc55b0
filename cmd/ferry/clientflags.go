package main

import (
	"github.com/spf13/cobra"

	"github.com/ferrydev/ferry/client"
)

// Client defaults and environment.
const (
	defaultURL = "http://127.0.0.1:8080"
	envURL     = "FERRY_URL"
	envKey     = "FERRY_API_KEY"
)

// clientFlags are the flags of the commands that talk to a Ferry: where,
// as whom, and how to print.
type clientFlags struct {
	env    env
	url    string
	key    string
	output string
}

// newClientFlags adds --url, --key and --output to cmd and its
// subcommands.
func newClientFlags(e env, cmd *cobra.Command) *clientFlags {
	f := &clientFlags{env: e}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "url", defaultURL, "Ferry's API base URL (or $"+envURL+")")
	// No default shown: the key comes from the environment and is never printed.
	pf.StringVar(&f.key, "key", "", "API key, sent as a bearer token (or $"+envKey+")")
	pf.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("url", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("key", cobra.NoFileCompletions)
	return f
}

// client checks the flags and returns the client and the printer they
// describe; a bad --url or --output is a usage error.
func (f *clientFlags) client(cmd *cobra.Command) (*client.Client, *printer, error) {
	p, err := f.printer()
	if err != nil {
		return nil, nil, err
	}
	url := f.url
	if !cmd.Flags().Changed("url") {
		if v := f.env.getenv(envURL); v != "" {
			url = v
		}
	}
	key := f.key
	if !cmd.Flags().Changed("key") {
		key = f.env.getenv(envKey)
	}
	c, err := client.New(url, key, client.WithUserAgent("ferry-cli/"+version))
	if err != nil {
		return nil, nil, usageErrorf("--url: %v", err)
	}
	return c, p, nil
}

// printer checks --output.
func (f *clientFlags) printer() (*printer, error) {
	switch f.output {
	case "table":
		return &printer{w: f.env.stdout}, nil
	case "json":
		return &printer{w: f.env.stdout, json: true}, nil
	}
	return nil, usageErrorf("--output %q: want table or json", f.output)
}
