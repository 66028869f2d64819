/*-------------------------------------------------------------------------
 *
 * json.h
 *	  The fields of a JSON object message, read with simdjson (json.cpp).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_JSON_H
#define FLOWSTATE_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes the parser may read past the end of its input. */
#define JSON_PADDING 64

typedef enum JsonKind
{
	JSONK_NULL,
	JSONK_TRUE,
	JSONK_FALSE,
	JSONK_NUMBER,				/* text: the number as written */
	JSONK_STRING,				/* text: unescaped */
	JSONK_OBJECT,				/* text: the object as written */
	JSONK_ARRAY					/* text: the array as written */
} JsonKind;

/* Called for each field of the top-level object; returns false to stop. */
typedef bool (*JsonFieldCallback) (void *arg, const char *key, size_t keylen,
								   JsonKind kind, const char *text, size_t len);

/*
 * JsonReadObject reads the JSON object in buf[0..len), which must be
 * followed by JSON_PADDING readable bytes, calling cb for each field.
 * Returns NULL, or the reason the message is not a JSON object.
 */
#ifdef __cplusplus
extern "C"
#endif
const char *JsonReadObject(const char *buf, size_t len, JsonFieldCallback cb, void *arg);

#endif							/* FLOWSTATE_JSON_H */
