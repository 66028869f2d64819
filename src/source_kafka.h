/*-------------------------------------------------------------------------
 *
 * source_kafka.h
 *	  The Kafka worker: a stream's partitions into its continuous views.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_SOURCE_KAFKA_H
#define FLOWSTATE_SOURCE_KAFKA_H

#include "fmgr.h"

extern PGDLLEXPORT void KafkaMain(Datum main_arg);
extern char *KafkaCheckProperty(const char *name, const char *value);

#endif							/* FLOWSTATE_SOURCE_KAFKA_H */
