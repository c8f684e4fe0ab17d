package store

import (
	"context"
	"fmt"
	"regexp"
)

// MaxSettingNameLen is the longest setting name a store accepts.
const MaxSettingNameLen = 63

var settingName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Settings keeps the control plane's own small values by name, such as
// its SSH identity: values every server sharing the store must agree on.
// They are not objects: they are never watched and write no events.
// Values are opaque bytes; secrets are sealed (package sealed) by the
// caller before they are stored. A store that keeps settings implements
// this besides store.Store; storetest.RunSettings is its conformance suite.
type Settings interface {
	// GetSetting returns the value of name, or ErrNotFound.
	GetSetting(ctx context.Context, name string) ([]byte, error)
	// CreateSetting stores name only if it is not set yet, else fails with
	// ErrAlreadyExists. Of concurrent creators (also in other processes
	// sharing the store) exactly one wins: "mint once" is a CreateSetting,
	// and a loser reads the winner's value with GetSetting.
	CreateSetting(ctx context.Context, name string, value []byte) error
	// PutSetting creates or replaces name.
	PutSetting(ctx context.Context, name string, value []byte) error
	// ListSettings returns the names of the settings starting with
	// prefix ("" for every one), sorted.
	ListSettings(ctx context.Context, prefix string) ([]string, error)
}

// CheckSettingName returns an ErrInvalid error unless name is a valid
// setting name: 1 to 63 lower-case letters, digits and '-', starting and
// ending with a letter or digit (a DNS-1123 label), such as
// "ssh-identity". Such a name can never become a path or escape a query.
// Implementations of Settings call it before touching storage.
func CheckSettingName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: setting name is required", ErrInvalid)
	case len(name) > MaxSettingNameLen:
		return fmt.Errorf("%w: setting name must be at most %d characters", ErrInvalid, MaxSettingNameLen)
	case !settingName.MatchString(name):
		return fmt.Errorf("%w: setting name %q: want lower-case letters, digits and '-', starting and ending with a letter or digit", ErrInvalid, name)
	}
	return nil
}
