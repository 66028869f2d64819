/*-------------------------------------------------------------------------
 *
 * source_decoding.h
 *	  The decoding worker of a database, and the cleanup of its slot.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_SOURCE_DECODING_H
#define FLOWSTATE_SOURCE_DECODING_H

extern void DecoderDropSlot(Oid dboid);

#endif							/* FLOWSTATE_SOURCE_DECODING_H */
