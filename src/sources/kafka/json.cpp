/*-------------------------------------------------------------------------
 *
 * json.cpp
 *	  JSON messages of Kafka streams, read with simdjson's On Demand API.
 *
 * simdjson reads a small JSON object about 2.5 times as fast as PostgreSQL's
 * own parser (src/common/jsonapi.c; bench/json_parsers.c, README.md,
 * "Benchmarks").  This is the only C++ file: it is called from C, uses no
 * exceptions, and hands each field of the top-level object to a callback
 * as text (strings unescaped, numbers as written, nested values as JSON),
 * leaving conversions to the types of the stream's columns to the caller.
 *
 *-------------------------------------------------------------------------
 */
#define SIMDJSON_EXCEPTIONS 0
#include <simdjson.h>

#include "sources/kafka/json.h"

using namespace simdjson;

static_assert(JSON_PADDING >= SIMDJSON_PADDING, "JSON_PADDING is too small for simdjson");

/* One parser per process: it keeps its buffers between messages. */
static ondemand::parser *parser = nullptr;

static const char *
message(error_code error)
{
	switch (error)
	{
		case TAPE_ERROR:
		case INCOMPLETE_ARRAY_OR_OBJECT:
			return "the message is not valid JSON";
		case INCORRECT_TYPE:
			return "the message is not a JSON object";
		case UTF8_ERROR:
			return "the message is not valid UTF-8";
		case UNCLOSED_STRING:
			return "the message has an unclosed string";
		case STRING_ERROR:
			return "the message has an invalid string escape";
		case NUMBER_ERROR:
			return "the message has an invalid number";
		case T_ATOM_ERROR:
		case F_ATOM_ERROR:
		case N_ATOM_ERROR:
			return "the message has an invalid literal";
		case EMPTY:
			return "the message is empty";
		case TRAILING_CONTENT:
			return "the message has content after its JSON object";
		default:
			return error_message(error);
	}
}

/*
 * Whether text is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 * (any size: a numeric column takes more than 64 bits).
 */
static bool
valid_number(std::string_view text)
{
	size_t		i = 0;
	size_t		n = text.size();
	size_t		start;

	if (i < n && text[i] == '-')
		i++;
	if (i < n && text[i] == '0')
		i++;
	else
	{
		start = i;
		while (i < n && text[i] >= '0' && text[i] <= '9')
			i++;
		if (i == start)
			return false;
	}
	if (i < n && text[i] == '.')
	{
		start = ++i;
		while (i < n && text[i] >= '0' && text[i] <= '9')
			i++;
		if (i == start)
			return false;
	}
	if (i < n && (text[i] == 'e' || text[i] == 'E'))
	{
		i++;
		if (i < n && (text[i] == '+' || text[i] == '-'))
			i++;
		start = i;
		while (i < n && text[i] >= '0' && text[i] <= '9')
			i++;
		if (i == start)
			return false;
	}
	return i == n;
}

extern "C" const char *
JsonReadObject(const char *buf, size_t len, JsonFieldCallback cb, void *arg)
{
	ondemand::document doc;
	ondemand::object object;
	error_code error;

	if (parser == nullptr)
	{
		parser = new (std::nothrow) ondemand::parser();
		if (parser == nullptr)
			return "out of memory";
	}
	error = parser->iterate(buf, len, len + JSON_PADDING).get(doc);
	if (error)
		return message(error);
	error = doc.get_object().get(object);
	if (error)
	{
		size_t		i = 0;

		while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
			i++;
		return i < len && buf[i] == '{' ? "the message is not valid JSON" : message(error);
	}

	for (auto field : object)
	{
		std::string_view key;
		ondemand::value value;
		ondemand::json_type type;
		JsonKind kind;
		std::string_view text;

		error = field.unescaped_key().get(key);
		if (!error)
			error = field.value().get(value);
		if (!error)
			error = value.type().get(type);
		if (error)
			return message(error);

		switch (type)
		{
			case ondemand::json_type::null:
				kind = JSONK_NULL;
				break;
			case ondemand::json_type::boolean:
				{
					bool		b;

					error = value.get_bool().get(b);
					kind = b ? JSONK_TRUE : JSONK_FALSE;
					break;
				}
			case ondemand::json_type::number:
				kind = JSONK_NUMBER;
				text = value.raw_json_token();
				while (!text.empty() && (text.back() == ' ' || text.back() == '\t' ||
										 text.back() == '\n' || text.back() == '\r'))
					text.remove_suffix(1);
				if (!valid_number(text))
					error = NUMBER_ERROR;
				break;
			case ondemand::json_type::string:
				kind = JSONK_STRING;
				error = value.get_string().get(text);
				break;
			case ondemand::json_type::object:
				{
					ondemand::object nested;

					kind = JSONK_OBJECT;
					error = value.get_object().get(nested);
					if (!error)
						error = nested.raw_json().get(text);
					break;
				}
			case ondemand::json_type::array:
				{
					ondemand::array nested;

					kind = JSONK_ARRAY;
					error = value.get_array().get(nested);
					if (!error)
						error = nested.raw_json().get(text);
					break;
				}
			default:
				return "the message is not valid JSON";
		}
		if (error)
			return message(error);
		if (!cb(arg, key.data(), key.size(), kind, text.data(), text.size()))
			return nullptr;
	}
	/* the whole message: content after the object is an error too */
	{
		const char *at;

		if (doc.current_location().get(at) == SUCCESS)
		{
			while (at < buf + len && (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r'))
				at++;
			if (at < buf + len)
				return "the message has content after its JSON object";
		}
	}
	return nullptr;
}
