module github.com/cutover-dev/cutover/cmd/cutover

go 1.26.8
