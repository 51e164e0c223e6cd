#pragma once
// A parsed Beast request to the plain request handlers see. Apart from the
// session so the fuzz target runs bytes through the same conversion.
#include "todo/http.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string>

namespace todo {

http::method to_method(boost::beast::http::verb v);
http::request to_plain(boost::beast::http::request<boost::beast::http::string_body>&& in, const std::string& remote);

}  // namespace todo
