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
	void		(*commit) (void *arg, TransactionId xid);
	void		(*message) (void *arg, const char *prefix, Size size, const char *message);
	RepOriginId skip_origin;	/* transactions of this origin are not decoded */
	void	   *arg;
} DecoderSink;

#define FLOWSTATE_PLUGIN "flowstate"

#endif							/* FLOWSTATE_OUTPUT_PLUGIN_H */
