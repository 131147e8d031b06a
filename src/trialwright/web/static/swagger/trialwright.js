// Starts Swagger UI on this server's OpenAPI document (no inline script: the CSP allows scripts from 'self' only).
window.addEventListener("DOMContentLoaded", function () {
  window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: false });
});
