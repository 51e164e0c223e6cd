"""The e2e tests' event check itself (event_contract): it passes the events
the server writes, and raises on a broken one wherever it was read."""
import copy
import json
import unittest

import event_contract
from event_contract import ContractViolation

TASK_ID = "019ad5e4-7c1a-7b3e-9f55-3c1d2b4a5e6f"
EVENT = {
    "specversion": "1.0", "id": "019ad5e4-7c1c-7b3e-9f55-3c1d2b4a5e71", "source": "/todo-server",
    "type": "com.todo.task.deleted", "subject": TASK_ID, "time": "2026-03-02T17:03:11.123Z",
    "datacontenttype": "application/json", "sequence": 7, "userid": "alice",
    "data": {"task": {"id": TASK_ID, "title": "Water the plants", "description": "", "completed": False,
                      "completed_at": None, "priority": "none", "tags": [], "due_at": None, "timezone": "UTC",
                      "recurrence": None, "series_id": None, "reminders": [], "version": 2,
                      "created_at": "2026-03-02T17:00:00Z", "updated_at": "2026-03-02T17:01:00Z"},
             "changes": {}},
}


def broken(**fields):
    e = copy.deepcopy(EVENT)
    for k, v in fields.items():
        if v is None:
            del e[k]
        else:
            e[k] = v
    return e


class EventContract(unittest.TestCase):
    def test_a_valid_event_passes_everywhere(self):
        event_contract.check([EVENT], "test")
        event_contract.check_frames([EVENT, {"type": "reset", "last_seq": 3}, {"type": "error", "message": "x"}])
        event_contract.check_records([{"partition": 0, "offset": 0, "key": "alice", "value": EVENT,
                                       "header_pairs": [("content-type", "application/cloudevents+json")]}], "t")
        event_contract.check_response("GET", "/api/v1/events?after=0", 200,
                                      b'{"items": [], "last_seq": 0}')

    def test_a_broken_event_fails_wherever_it_was_read(self):
        cases = [("missing id", broken(id=None), "must have required property 'id'"),
                 ("wrong specversion", broken(specversion="0.3"), "/specversion must be equal to constant"),
                 ("bad data", broken(data={"task": {}, "changes": {}}), "/data/task must have required property"),
                 ("subject is another task", broken(subject="019ad5e4-7c1a-7b3e-9f55-000000000000"),
                  "is not data.task.id")]
        for what, event, message in cases:
            with self.subTest(what):
                with self.assertRaisesRegex(ContractViolation, message):
                    event_contract.check([EVENT, event], "test")
                with self.assertRaisesRegex(ContractViolation, r"WebSocket: event #0"):
                    event_contract.check_frames([event])
                with self.assertRaisesRegex(ContractViolation, r"GET /api/v1/events\?after=3: event #0"):
                    event_contract.check_response("GET", "/api/v1/events?after=3", 200,
                                                  '{"items": [%s], "last_seq": 9}' % json.dumps(event))
                # A broken event is never remembered as checked.
                with self.assertRaises(ContractViolation):
                    event_contract.check([event], "again")

    def test_a_kafka_record_is_structured_keyed_by_user_on_its_topic(self):
        ce = [("content-type", "application/cloudevents+json")]
        event_contract.check_records([{"partition": 1, "offset": 4, "key": "alice", "value": EVENT,
                                       "header_pairs": ce}], "task-updates")
        cases = [("no content-type", "task-events", {"key": "alice", "header_pairs": []},
                  "no content-type: application/cloudevents\\+json header"),
                 ("another key", "task-events", {"key": "bob", "header_pairs": ce}, "the key 'bob' is not"),
                 ("a task event among reminders", "reminders", {"key": "alice", "header_pairs": ce},
                  "com.todo.task.deleted event; this topic carries com.todo.reminder.\\* only")]
        for what, topic, record, message in cases:
            with self.subTest(what):
                with self.assertRaisesRegex(ContractViolation, message):
                    event_contract.check_records([{"partition": 1, "offset": 4, "value": EVENT, **record}], topic)

    def test_control_frames_are_not_events_but_everything_else_is(self):
        with self.assertRaises(ContractViolation):
            event_contract.check_frames([{"type": "hello"}])
        with self.assertRaisesRegex(ContractViolation, "binary frame"):
            event_contract.check_frames([b"\x00"])


if __name__ == "__main__":
    unittest.main()
