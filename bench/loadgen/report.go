//go:build linux

package main

import "errors"

func reportCommand(args []string) error { return errors.New("todo") }
