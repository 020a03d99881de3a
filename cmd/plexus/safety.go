package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/plexus-router/plexus/cmd/plexus/client"
)

// Choices of the flags with a fixed set of values.
var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"json", "console", "auto"}
)

// minKeyLen is the shortest admin key accepted without -insecure-key.
const minKeyLen = 16

// weakKeys are sample values from docs and deploy files: refused as admin
// keys whatever their length.
var weakKeys = []string{"change-me", "changeme", "secret", "password", "admin"}

// validateSafety checks what a careless configuration gets wrong: a value
// outside a flag's choices, a weak admin key, half a TLS pair.
func (c *Config) validateSafety() error {
	if !slices.Contains(logLevels, c.LogLevel) {
		return fmt.Errorf("-log-level %q: want %s", c.LogLevel, orList(logLevels))
	}
	if !slices.Contains(logFormats, c.LogFormat) {
		return fmt.Errorf("-log-format %q: want %s", c.LogFormat, orList(logFormats))
	}
	if err := c.checkKey(); err != nil {
		return err
	}
	for _, p := range [][2]string{{"api", c.APITLSCert}, {"logs", c.LogsTLSCert}} {
		key := c.APITLSKey
		if p[0] == "logs" {
			key = c.LogsTLSKey
		}
		if (p[1] == "") != (key == "") {
			return fmt.Errorf("-%s-tls-cert and -%s-tls-key go together", p[0], p[0])
		}
	}
	return nil
}

// checkKey refuses a weak admin key unless -insecure-key. An empty key is
// fine: the node generates a strong one.
func (c *Config) checkKey() error {
	if c.AuthKey == "" || c.InsecureKey || !weakKey(c.AuthKey) {
		return nil
	}
	return errors.New("the admin key (-auth-key, PLEXUS_AUTH_KEY) is weak: it is a sample value or shorter than 16 characters; " +
		"choose a random one (openssl rand -hex 16), leave it empty to have one generated, or pass -insecure-key to accept it")
}

func weakKey(k string) bool {
	return len(k) < minKeyLen || slices.Contains(weakKeys, strings.ToLower(k))
}

// flagHint suggests a defined flag for "flag provided but not defined: -x".
func flagHint(fs *flag.FlagSet, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return ""
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	h := client.Hint(strings.TrimPrefix(name, "-"), names)
	if !strings.Contains(h, "did you mean") {
		return ""
	}
	return strings.Replace(h, `"`, `"-`, 1)
}
