/*-------------------------------------------------------------------------
 *
 * output_plugin.c
 *	  The "flowstate" logical decoding output plugin.
 *
 * The plugin only runs inside flowstate's decoding worker (decoder.c),
 * which decodes WAL itself instead of going through a walsender: each
 * callback hands the change, still a heap tuple with its relation, to the
 * DecoderSink the worker put in ctx->output_writer_private.  Nothing is
 * written to an output stream.  Large transactions are streamed while in
 * progress (the stream callbacks), which the worker gathers aside until
 * they commit.  Used through the SQL interface
 * (pg_logical_slot_get_changes), the plugin refuses to start.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "replication/origin.h"
#include "replication/output_plugin.h"
#include "utils/memutils.h"

#include "sources/decoding/output_plugin.h"

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static DecoderSink *
sink_of(LogicalDecodingContext *ctx)
{
	return (DecoderSink *) ctx->output_writer_private;
}

static void
decoder_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt,
				bool is_init)
{
	opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	opt->receive_rewrites = false;

	/* the SQL interface passes a writer; our worker decodes without one */
	if (!is_init && ctx->prepare_write != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the flowstate output plugin can only be used by flowstate's workers"),
				 errhint("Use pgoutput or test_decoding to read changes through SQL.")));
}

static void
decoder_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DecoderSink *sink = sink_of(ctx);

	if (sink && sink->begin)
		sink->begin(sink->arg, txn->xid, txn->final_lsn);
}

static void
decoder_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   Relation relation, ReorderBufferChange *change)
{
	DecoderSink *sink = sink_of(ctx);

	if (sink && sink->change)
		sink->change(sink->arg, relation, change);
}

static void
decoder_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				 int nrelations, Relation relations[],
				 ReorderBufferChange *change)
{
	DecoderSink *sink = sink_of(ctx);

	if (sink && sink->truncate)
		sink->truncate(sink->arg, nrelations, relations);
}

static void
decoder_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			   XLogRecPtr commit_lsn)
{
	DecoderSink *sink = sink_of(ctx);

	if (sink && sink->commit)
		sink->commit(sink->arg, txn->xid, commit_lsn, txn->xact_time.commit_time);
}

/* A transactional message of the transaction (see partition.c). */
static void
decoder_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				XLogRecPtr message_lsn, bool transactional, const char *prefix,
				Size message_size, const char *message)
{
	DecoderSink *sink = sink_of(ctx);

	if (transactional && sink && sink->message)
		sink->message(sink->arg, prefix, message_size, message);
}

/*
 * Transactions streamed while in progress: txn is the top-level
 * transaction, change->txn the subtransaction that made a change.
 */
static void
decoder_stream_start(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DecoderSink *sink = sink_of(ctx);

	if (sink && sink->stream_start)
		sink->stream_start(sink->arg, txn->xid);
}

static void
decoder_stream_stop(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	DecoderSink *sink = sink_of(ctx);

	if (sink && sink->stream_stop)
		sink->stream_stop(sink->arg);
}

static void
decoder_stream_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  Relation relation, ReorderBufferChange *change)
{
	DecoderSink *sink = sink_of(ctx);

	if (sink && sink->stream_change)
		sink->stream_change(sink->arg, txn->xid,
							change->txn ? change->txn->xid : txn->xid, relation, change);
}

static void
decoder_stream_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						int nrelations, Relation relations[],
						ReorderBufferChange *change)
{
	DecoderSink *sink = sink_of(ctx);

	if (sink && sink->stream_truncate)
		sink->stream_truncate(sink->arg, txn->xid, nrelations, relations);
}

static void
decoder_stream_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					   XLogRecPtr message_lsn, bool transactional, const char *prefix,
					   Size message_size, const char *message)
{
	DecoderSink *sink = sink_of(ctx);

	if (transactional && sink && sink->stream_message)
		sink->stream_message(sink->arg, txn->xid, prefix, message_size, message);
}

static void
decoder_stream_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  XLogRecPtr commit_lsn)
{
	DecoderSink *sink = sink_of(ctx);

	if (sink && sink->stream_commit)
		sink->stream_commit(sink->arg, txn->xid, commit_lsn, txn->xact_time.commit_time);
}

/* txn is the subtransaction rolled back, or the top-level transaction. */
static void
decoder_stream_abort(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					 XLogRecPtr abort_lsn)
{
	DecoderSink *sink = sink_of(ctx);
	TransactionId top = txn->toptxn ? txn->toptxn->xid : txn->xid;

	if (sink && sink->stream_abort)
		sink->stream_abort(sink->arg, top, txn->xid);
}

/*
 * The worker's own flushes carry its replication origin: skip them whole,
 * unless a view reads a table they write (a history).
 */
static bool
decoder_filter_origin(LogicalDecodingContext *ctx, RepOriginId origin_id)
{
	DecoderSink *sink = sink_of(ctx);

	return sink != NULL && !sink->decode_own &&
		origin_id != InvalidRepOriginId && origin_id == sink->skip_origin;
}

/*
 * _PG_output_plugin_init fills the callbacks; PostgreSQL finds it by the
 * plugin name of the slot, which is the library's name.
 */
void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = decoder_startup;
	cb->begin_cb = decoder_begin;
	cb->change_cb = decoder_change;
	cb->truncate_cb = decoder_truncate;
	cb->commit_cb = decoder_commit;
	cb->message_cb = decoder_message;
	cb->filter_by_origin_cb = decoder_filter_origin;
	cb->stream_start_cb = decoder_stream_start;
	cb->stream_stop_cb = decoder_stream_stop;
	cb->stream_change_cb = decoder_stream_change;
	cb->stream_truncate_cb = decoder_stream_truncate;
	cb->stream_message_cb = decoder_stream_message;
	cb->stream_commit_cb = decoder_stream_commit;
	cb->stream_abort_cb = decoder_stream_abort;
}
