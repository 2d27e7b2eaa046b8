// One MongoDB user per service, limited to its own database (readWrite there, nothing
// elsewhere): a compromised service cannot read auth's signing keys or another's data.
// The image runs this on the first start of an empty data volume; on an existing volume run
// it once by hand (infra/README.md). Re-running it resets the passwords, nothing else.
const passwords = {
  auth: process.env.MONGO_AUTH_PASSWORD,
  tasks: process.env.MONGO_TASKS_PASSWORD,
  analytics: process.env.MONGO_ANALYTICS_PASSWORD,
};
for (const [service, password] of Object.entries(passwords)) {
  if (!password) {
    throw new Error(`MONGO_${service.toUpperCase()}_PASSWORD is not set`);
  }
  const database = db.getSiblingDB(service);
  const roles = [{ role: "readWrite", db: service }];
  if (database.getUser(service) === null) {
    database.createUser({ user: service, pwd: password, roles });
  } else {
    database.updateUser(service, { pwd: password, roles });
  }
}
