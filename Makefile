# flowstate: stateful stream processing inside PostgreSQL 15 (PGXS build)

EXTENSION  = flowstate
MODULE_big = flowstate
OBJS = \
	src/init.o \
	src/guc.o \
	src/workers/registry.o \
	src/workers/launcher.o \
	src/workers/manager.o \
	src/workers/source_worker.o \
	src/workers/backpressure.o \
	src/fs_catalog/catalog.o \
	src/fs_catalog/partition.o \
	src/fs_catalog/security.o \
	src/query/join.o \
	src/query/query.o \
	src/state/group.o \
	src/state/state_store.o \
	src/state/flushes.o \
	src/state/capture.o \
	src/state/state_table.o \
	src/aggregates/aggregate.o \
	src/aggregates/aggregate_spec.o \
	src/aggregates/generic.o \
	src/aggregates/aggregate_result.o \
	src/aggregates/state_format.o \
	src/aggregates/shared_block.o \
	src/engine/snapshot.o \
	src/engine/ingest.o \
	src/engine/open_txn.o \
	src/engine/merge.o \
	src/engine/state_load.o \
	src/engine/settle.o \
	src/engine/projection.o \
	src/engine/lookup.o \
	src/engine/dimension.o \
	src/engine/backfill.o \
	src/engine/flush.o \
	src/engine/history.o \
	src/engine/history_writer.o \
	src/engine/history_stream.o \
	src/sources/decoding/output_plugin.o \
	src/sources/decoding/change_sink.o \
	src/sources/decoding/decoder.o \
	src/sources/kafka/stream.o \
	src/sources/kafka/json.o \
	src/sources/kafka/fdw.o \
	src/sources/kafka/consumer.o \
	src/sources/kafka/partitions.o \
	src/sources/kafka/waker.o \
	src/api/api.o \
	src/api/wait.o \
	src/api/catalog_change.o \
	src/api/history.o \
	src/api/reader.o \
	src/api/partial_state.o \
	src/api/read_filter.o \
	src/api/stats.o \
	src/api/convert.o \
	src/api/ddl.o \
	src/api/hop.o \
	src/api/multiset.o \
	src/api/panes.o \
	src/api/session.o
PGFILEDESC = "flowstate - stateful stream processing inside PostgreSQL"

DATA = $(wildcard sql/$(EXTENSION)--*.sql)

# -Wextra minus the three warnings PostgreSQL's own headers trip; CI adds COPT=-Werror
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers -fvisibility=hidden
# headers by their folder ("engine/ingest.h"); only what PostgreSQL must find
# (PGDLLEXPORT) is exported from the library
PG_CPPFLAGS = -I$(srcdir)/src '-DPGDLLEXPORT=__attribute__((visibility("default")))' 
# src/json.cpp, the one C++ file: simdjson without exceptions
PG_CXXFLAGS = -std=c++17 -fno-exceptions -fno-rtti -fvisibility=hidden $(COPT)
SHLIB_LINK = -lrdkafka -lsimdjson -lstdc++
# no bitcode for JIT inlining: the C++ file would need clang's C++17 too
with_llvm = no

# pg_regress: test/sql/*.sql, outputs in test/expected/; one throwaway
# preloaded server (test/flowstate.conf)
REGRESS = setup catalog workers history window_tumbling window_final views window_hop window_hop_final window_session aggregates_multiset aggregates_generic aggregates_user views_errors views_side views_wait views_memory views_time_zone \
	views_overflow security oracle partial_states views_partitioned \
	kafka_options joins joins_tables joins_temporal upgrade
REGRESS_OPTS = --inputdir=test --temp-config=test/flowstate.conf --temp-instance=tmp_regress

# isolation specs: test/specs/*.spec, outputs in test/expected/
ISOLATION = extension_lifecycle views_concurrent session_merge history_concurrent joins_concurrent
ISOLATION_OPTS = --inputdir=test --temp-config=test/flowstate.conf \
	--temp-instance=tmp_isolation

# TAP: restarts, crashes and worker lifecycle (PostgreSQL::Test::Cluster)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = tmp_regress tmp_isolation tmp_prereq_no_preload \
	tmp_prereq_wal_level output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object is rebuilt when a header changes
$(OBJS): $(wildcard src/*.h src/*/*.h src/*/*/*.h)

# CREATE EXTENSION's refusals need servers that are set up wrongly on purpose:
# one without the preload, one with wal_level = replica.  They run first.
installcheck: installcheck-prerequisites

installcheck-prerequisites:
	$(pg_regress_installcheck) --inputdir=test --temp-config=test/no_preload.conf \
		--temp-instance=tmp_prereq_no_preload prereq_no_preload
	$(pg_regress_installcheck) --inputdir=test --temp-config=test/wal_level.conf \
		--temp-instance=tmp_prereq_wal_level prereq_wal_level

.PHONY: installcheck-prerequisites

# the benchmark (not a test): bench/run.sh [rounds], figures in the README
bench: bench-tables bench-kafka bench-groups bench-windows bench-windows-kafka bench-bulk bench-aggregates bench-history bench-history-kafka bench-joins-kafka bench-joins-tables
bench-tables:
	bash bench/run.sh
bench-history:
	bash bench/history.sh
bench-history-kafka:
	bash bench/history_kafka.sh
bench-joins-kafka:
	bash bench/joins_kafka.sh
bench-joins-tables:
	bash bench/joins_tables.sh
bench-kafka:
	bash bench/kafka.sh
bench-groups:
	bash bench/groups.sh
bench-windows:
	bash bench/windows.sh
bench-windows-kafka:
	bash bench/windows_kafka.sh
bench-bulk:
	bash bench/bulk.sh
bench-aggregates:
	bash bench/aggregates.sh

.PHONY: bench bench-tables bench-kafka bench-groups bench-windows bench-windows-kafka bench-bulk bench-aggregates bench-history bench-history-kafka bench-joins-kafka bench-joins-tables

# the Kafka cluster of the TAP tests and the benchmark (librdkafka's mock)
test/kafka_mock: test/kafka_mock.c
	$(CC) -O2 -Wall $(COPT) -o $@ $< -lrdkafka

installcheck: test/kafka_mock
EXTRA_CLEAN += test/kafka_mock
