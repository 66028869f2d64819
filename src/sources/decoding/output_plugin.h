/*-------------------------------------------------------------------------
 *
 * output_plugin.h
 *	  flowstate's logical decoding output plugin, run inside the decoding
 *	  worker: changes reach a sink as heap tuples, with no text round trip.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_OUTPUT_PLUGIN_H
#define FLOWSTATE_OUTPUT_PLUGIN_H

#include "replication/logical.h"
#include "replication/reorderbuffer.h"

/* Where decoded changes go; the worker sets it as output_writer_private. */
typedef struct DecoderSink
{
	void		(*begin) (void *arg, TransactionId xid, XLogRecPtr commit_lsn);
	void		(*change) (void *arg, Relation rel, ReorderBufferChange *change);
	void		(*truncate) (void *arg, int nrelations, Relation *relations);
	void		(*commit) (void *arg, TransactionId xid, XLogRecPtr commit_lsn,
							   TimestampTz commit_time);
	void		(*message) (void *arg, const char *prefix, Size size, const char *message);

	/*
	 * A transaction decoded while in progress (when the reorder buffer
	 * reaches logical_decoding_work_mem): parts of its changes between
	 * stream_start and stream_stop, each change with the subtransaction
	 * that made it; then its commit, or the abort of the transaction or of
	 * one subtransaction.
	 */
	void		(*stream_start) (void *arg, TransactionId xid);
	void		(*stream_stop) (void *arg);
	void		(*stream_change) (void *arg, TransactionId xid, TransactionId subxid,
								  Relation rel, ReorderBufferChange *change);
	void		(*stream_truncate) (void *arg, TransactionId xid, int nrelations,
									Relation *relations);
	void		(*stream_message) (void *arg, TransactionId xid, const char *prefix,
								   Size size, const char *message);
	void		(*stream_commit) (void *arg, TransactionId xid, XLogRecPtr commit_lsn,
								  TimestampTz commit_time);
	void		(*stream_abort) (void *arg, TransactionId xid, TransactionId subxid);
	RepOriginId skip_origin;	/* transactions of this origin are not decoded */
	bool		decode_own;		/* ... unless a view reads what they write */
	void	   *arg;
} DecoderSink;

#define FLOWSTATE_PLUGIN "flowstate"

#endif							/* FLOWSTATE_OUTPUT_PLUGIN_H */
