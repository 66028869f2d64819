/*-------------------------------------------------------------------------
 *
 * consumer.h
 *	  The Kafka worker: a stream's partitions into its continuous views.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_CONSUMER_H
#define FLOWSTATE_CONSUMER_H

#include "fmgr.h"

extern PGDLLEXPORT void flowstate_kafka_main(Datum main_arg);
extern char *KafkaCheckProperty(const char *name, const char *value);

#endif							/* FLOWSTATE_CONSUMER_H */
