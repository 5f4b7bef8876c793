/** An error for the user, announced as it appears; nothing when there is none. */
export function ErrorText({ message, className = '' }: { message?: string | null; className?: string }) {
  if (!message) return null;
  return (
    <p role="alert" className={`text-sm text-red-600 ${className}`.trim()}>
      {message}
    </p>
  );
}
