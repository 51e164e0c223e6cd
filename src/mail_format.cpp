// The RFC 5322 message of a reminder e-mail. Pure.
#include "todo/crypto.hpp"
#include "todo/outbound.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace todo::outbound {
namespace {

// RFC 2047 encoded words of at most 39 bytes each (52 base64 characters, a
// 64-character word that fits after "Subject: "), cut between UTF-8
// sequences and folded onto lines of their own. Plain ASCII stays as it is unless it could be read as a word.
std::string header_text(std::string_view s) {
  bool plain = s.size() <= 900 && s.find("=?") == s.npos &&
               std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (plain) {
    return std::string(s);
  }
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = std::min<std::size_t>(39, s.size() - i);
    while (n > 0 && i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) {
      --n;
    }
    if (n == 0) {  // not UTF-8: cut anywhere
      n = std::min<std::size_t>(39, s.size() - i);
    }
    if (!out.empty()) {
      out += "\r\n ";
    }
    out += "=?UTF-8?B?" + crypto::b64_encode(s.substr(i, n)) + "?=";
    i += n;
  }
  return out;
}

// RFC 2045 quoted-printable: any line break in the text becomes CRLF, lines
// stay within 76 characters, and the message is 7-bit whatever the text.
std::string quoted_printable(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  std::size_t column = 0;
  auto put = [&](std::string_view piece) {
    if (column + piece.size() > 75) {
      out += "=\r\n";
      column = 0;
    }
    out += piece;
    column += piece.size();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
        ++i;
      }
      out += "\r\n";
      column = 0;
      continue;
    }
    bool line_end = i + 1 == text.size() || text[i + 1] == '\r' || text[i + 1] == '\n';
    if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end)) {
      put(std::string_view(&text[i], 1));
    } else {
      const char escaped[] = {'=', hex[c >> 4], hex[c & 15]};
      put(std::string_view(escaped, 3));
    }
  }
  if (column > 0 || out.empty()) {
    out += "\r\n";
  }
  return out;
}

std::string rfc5322_date(std::chrono::system_clock::time_point now) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

}  // namespace

std::string format_message(const mail& m, std::chrono::system_clock::time_point now) {
  std::string out;
  out += "Date: " + rfc5322_date(now) + "\r\n";
  out += "From: " + m.from + "\r\n";
  out += "To: " + m.to + "\r\n";
  out += "Subject: " + header_text(m.subject) + "\r\n";
  if (!m.message_id.empty()) {
    out += "Message-ID: <" + m.message_id + ">\r\n";
  }
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Transfer-Encoding: quoted-printable\r\n";
  out += "\r\n";
  out += quoted_printable(m.text);
  return out;
}

}  // namespace todo::outbound
