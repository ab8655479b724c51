module github.com/example/inventory-svc

go 1.22

toolchain go1.22.5

require (
	github.com/google/uuid v1.6.0
	github.com/spf13/cobra v1.8.1
	golang.org/x/text v0.16.0 // indirect
)

require github.com/spf13/pflag v1.0.5 // indirect

replace golang.org/x/text => golang.org/x/text v0.17.0

replace github.com/example/internal/auth => ../auth
