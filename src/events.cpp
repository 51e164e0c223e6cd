#include "todo/events.hpp"

#include "todo/json.hpp"

namespace todo {

std::string to_cloudevent(const event& e) {
  json::writer w;
  w.begin_object();
  w.key("specversion").value("1.0");
  w.key("id").value(e.id);
  w.key("source").value(event_source);
  w.key("type").value(e.type);
  w.key("subject").value(e.subject);
  w.key("time").value(time::format(e.time));
  w.key("datacontenttype").value("application/json");
  w.key("sequence").value(e.seq);
  w.key("userid").value(e.user);
  w.key("data").raw(e.data);
  w.end_object();
  return w.take();
}

}  // namespace todo
