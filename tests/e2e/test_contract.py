"""GET /openapi.json serves docs/openapi.yaml, converted at build time."""
import json
import os
import unittest

import yaml

from harness import ServerTest, new_user

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi.yaml")


class OpenApiDocument(ServerTest):
    def test_served_document_is_the_yaml_file(self):
        r = self.server.get("/openapi.json")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        with open(SPEC, encoding="utf-8") as f:
            self.assertEqual(r.json(), yaml.safe_load(f))

    def test_served_without_a_token_and_with_head(self):
        r = self.server.get("/openapi.json", headers={"Authorization": "Bearer not-a-token"})
        self.assertEqual(r.status, 200, r)
        head = self.server.request("HEAD", "/openapi.json")
        self.assertEqual(head.status, 200, head)
        self.assertEqual(int(head.headers["content-length"]), len(r.body.encode()))

    def test_every_documented_error_route_answers_a_problem(self):
        # The answers the document lists for requests that match no operation.
        user = new_user()
        self.assertProblem(self.server.get("/nowhere"), 404)
        self.assertProblem(self.server.get("/api/v1/nowhere"), 401)
        self.assertProblem(self.server.get("/api/v1/nowhere", user=user), 404)
        r = self.server.request("PUT", "/openapi.json")
        self.assertProblem(r, 405)
        self.assertEqual(r.headers["allow"], "GET, HEAD")


if __name__ == "__main__":
    unittest.main()
