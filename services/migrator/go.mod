module github.com/cutover-dev/cutover/services/migrator

go 1.26.8
