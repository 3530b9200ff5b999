// Browser notification every Sunday at 10:00 reminding me to check the soil of the big fig.
function msUntilSunday10() {
  const now = new Date();
  const next = new Date(now);
  next.setDate(now.getDate() + ((7 - now.getDay()) % 7));
  next.setHours(10, 0, 0, 0);
  if (next <= now) next.setDate(next.getDate() + 7);
  return next - now;
}

function schedule() {
  setTimeout(() => {
    new Notification("Check the fiddle-leaf fig soil");
    schedule();
  }, msUntilSunday10());
}

Notification.requestPermission().then(schedule);
