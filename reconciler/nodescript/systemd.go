package nodescript

import nf "bakery.dev/bakery/reconciler/nodefiles"

// SlotInput is the input of the scripts that act on one slot of an app.
type SlotInput struct {
	App, Slot string
}

// SystemdEnvInput is the input of systemd-install-env.
type SystemdEnvInput struct {
	App, Slot string
	// EnvFile is the slot's environment file (nodefiles.EnvFile), sent on
	// stdin: it holds the app's secrets, so never on a command line.
	EnvFile string
}

// SystemdInstallEnv creates the app's run directory and installs the
// slot's environment file through the bakery-sudo helper (env-install),
// which writes it root-owned where systemd reads it.
var SystemdInstallEnv = define("systemd-install-env", func(in SystemdEnvInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
	c.input(in.EnvFile)
})

// SystemdUnitInput is the input of systemd-install-unit.
type SystemdUnitInput struct {
	// Unit holds the unit's parameters. The helper renders the unit from
	// its own template (nodefiles.Unit renders the same text); no unit
	// text is ever sent.
	Unit nf.Slot
}

// SystemdInstallUnit installs the slot's unit through the bakery-sudo
// helper (unit-install APP SLOT PORT RELEASE STOP) and reloads systemd.
var SystemdInstallUnit = define("systemd-install-unit", func(in SystemdUnitInput, c *call) {
	if err := in.Unit.Validate(); err != nil {
		c.fail("%v", err)
		return
	}
	args := nf.UnitArgs(in.Unit)
	for i, name := range []string{"APP", "SLOT", "PORT", "RELEASE", "STOP"} {
		c.set(name, args[i])
	}
})

// SystemdStart (re)starts the slot's unit and enables it at boot.
var SystemdStart = define("systemd-start", func(in SlotInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
})

// SystemdStop stops the slot's unit and disables it at boot.
var SystemdStop = define("systemd-stop", func(in SlotInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
})

// SystemdRemove stops both slots' units and removes them, their
// environment files and the app's own user and data directory.
var SystemdRemove = define("systemd-remove", func(in AppInput, c *call) { c.app(in.App) })
