/*-------------------------------------------------------------------------
 *
 * decoder.h
 *	  The decoding worker of a database: the source of its views over tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_DECODER_H
#define FLOWSTATE_DECODER_H

#include "postgres.h"

extern PGDLLEXPORT void flowstate_decoder_main(Datum main_arg);

#endif							/* FLOWSTATE_DECODER_H */
